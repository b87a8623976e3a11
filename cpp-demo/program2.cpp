// program2: the seed's program2.py in C++. Opens the existing segment (default "MyMemory") and
// changes the fields that program1 prints. Out-of-range values cannot be written by mistake:
// each field has a fixed type, and every access is bounds-checked.
//
// Usage: program2 [name=MyMemory]
#include <shmbridge.hpp>

#include <cstdint>
#include <cstdio>

using namespace shmbridge;

int main(int argc, char** argv) {
    const char* name = argc > 1 ? argv[1] : "MyMemory";
    try {
        // shm = SharedMemory(name="MyMemory", create=False)
        shared_memory_object shm(open_only, name, read_write);
        mapped_region buf(shm, read_write);
        buf.set<std::uint8_t>(1, 127);        // shm.buf[1] = 127
        buf.set<std::uint8_t>(2, 255);        // shm.buf[2] = 255
        buf.set<std::int32_t>(4, -128);       // struct.pack("i", -128)
        buf.set<std::uint32_t>(8, 6666);      // struct.pack("I", 6666)
        buf.set<float>(12, 1.414f);           // struct.pack("f", 1.414)
        std::printf("program2: changed the fields of %s (%zu bytes)\n", name, buf.get_size());
    } catch (const shmbridge::error& e) {
        // e.g. SHMB_NOT_FOUND (errno 2) when program1 is not running.
        std::fprintf(stderr, "program2: %s (code %u, errno %d)\n", e.what(),
                     static_cast<unsigned>(e.code()), e.sys_errno());
        return 1;
    }
    return 0;
}
