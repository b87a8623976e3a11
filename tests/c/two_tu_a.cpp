// Two translation units that both include shmbridge.hpp and use every class link into one
// program: everything in the header is inline, nothing is defined twice.
#include <shmbridge.hpp>

#include <unistd.h>

#include <cstdio>
#include <string>

std::string two_tu_b(const char* name);

std::string two_tu_a(const char* name) {
    using namespace shmbridge;
    shared_memory_object shm(create_only, name, read_write);
    shm.truncate(64);
    mapped_region region(shm, read_write);
    region.set<std::uint32_t>(0, 0xC0FFEEu);
    return two_tu_b(name);
}

int main() {
    std::string name = "shmb_t_cxx2tu_" + std::to_string(static_cast<long>(::getpid()));
    struct remover {
        std::string n;
        ~remover() { shmbridge::shared_memory_object::remove(n.c_str()); }
    } rm{name};
    std::string got = two_tu_a(name.c_str());
    std::printf("two translation units: %s\n", got.c_str());
    return got == "c0ffee" ? 0 : 1;
}
