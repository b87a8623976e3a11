// sender.cpp
#include <shmbridge.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>

using namespace shmbridge;

int main() {
    // Remove shared memory on construction and destruction
    struct shm_remove {
        shm_remove() { shared_memory_object::remove("shm_test"); }
        ~shm_remove() { shared_memory_object::remove("shm_test"); }
    } remover;

    // Open the file
    std::ifstream file("data.ipc", std::ios::binary);
    if (!file) {
        std::cerr << "Error opening file\n";
        return 1;
    }

    // Get file size
    file.seekg(0, std::ios::end);
    std::size_t fileSize = file.tellg();
    file.seekg(0, std::ios::beg);

    // Create a shared memory object
    shared_memory_object shm(create_only, "shm_test", read_write);

    // Set size of the shared memory
    shm.truncate(fileSize);

    // Map the whole shared memory in this process
    mapped_region region(shm, read_write);

    // Get the address of the mapped region
    void* addr = region.get_address();

    // Read file content into shared memory
    file.read(static_cast<char*>(addr), fileSize);

    getchar();
}
