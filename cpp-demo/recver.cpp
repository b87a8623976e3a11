// recver.cpp
#include <shmbridge.hpp>
#include <fstream>
#include <iostream>

using namespace shmbridge;

int main() {
    // Open the shared memory object
    shared_memory_object shm(open_only, "shm_test", read_only);

    // Map the whole shared memory in this process
    mapped_region region(shm, read_only);

    // Get the address of the mapped region
    void* addr = region.get_address();
    std::size_t size = region.get_size();

    // Open the output file
    std::ofstream file("data_out.bin", std::ios::binary);
    if (!file) {
        std::cerr << "Error opening file\n";
        return 1;
    }

    // Write shared memory content to file
    file.write(static_cast<char*>(addr), size);

    return 0;
}
