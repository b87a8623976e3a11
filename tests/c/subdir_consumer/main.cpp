#include <shmbridge.hpp>
#include <cstdio>

int main() {
    shmbridge::mapped_region r = shmbridge::anonymous_shared_memory(64);
    r.set<std::uint32_t>(0, 7);
    std::printf("add_subdirectory C++ consumer: %u\n", r.get<std::uint32_t>(0));
    return r.get<std::uint32_t>(0) == 7 ? 0 : 1;
}
