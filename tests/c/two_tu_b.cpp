// The second translation unit of the two-TU link test (see two_tu_a.cpp).
#include <shmbridge.hpp>

#include <cstdio>
#include <string>

std::string two_tu_b(const char* name) {
    using namespace shmbridge;
    shared_memory_object shm(open_only, name, read_only);
    mapped_region region(shm, read_only);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%x", static_cast<unsigned>(region.get<std::uint32_t>(0)));
    (void)framed_segment::remove("shmb_t_never_created_2tu");
    return buf;
}
