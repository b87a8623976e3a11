// program1: the seed's program1.py in C++. Creates the segment "MyMemory" (1024 bytes), writes
// typed fields at fixed offsets, then prints the first fields every few seconds until Ctrl-C,
// and removes the segment on the way out. Run program2 meanwhile to see them change.
//
// The fields are little-endian, exactly what Python's struct.pack("i"/"I"/"f") writes on this
// machine, so the Python program2.py from the seed can change them too.
//
// Usage: program1 [name=MyMemory] [prints=forever] [interval_ms=3000]
#include <shmbridge.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

using namespace shmbridge;

static volatile std::sig_atomic_t stop = 0;

int main(int argc, char** argv) {
    const char* name = argc > 1 ? argv[1] : "MyMemory";
    const long prints = argc > 2 ? std::atol(argv[2]) : -1;
    const long interval_ms = argc > 3 ? std::atol(argv[3]) : 3000;
    std::signal(SIGINT, [](int) { stop = 1; });

    // shm = SharedMemory(name="MyMemory", size=1024, create=True)
    shared_memory_object shm(create_only, name, read_write);
    struct remover {  // shm.unlink() on the way out, however we leave
        const char* n;
        ~remover() { shared_memory_object::remove(n); }
    } rm{name};
    shm.truncate(1024);
    mapped_region buf(shm, read_write);  // zero-filled, like shm.buf

    buf.set<std::uint8_t>(0, 128);     // shm.buf[0] = 128
    buf.set<std::int32_t>(4, -1);      // shm.buf[4:8] = struct.pack("i", -1)
    buf.set<std::uint32_t>(8, 1);      // shm.buf[8:12] = struct.pack("I", 1)
    buf.set<float>(12, 2.0f);          // shm.buf[12:16] = struct.pack("f", 2.0)

    for (long i = 0; !stop && (prints < 0 || i < prints); ++i) {
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
        std::printf("%u,%u,%u,%u,%d,%u,%g\n", buf.get<std::uint8_t>(0), buf.get<std::uint8_t>(1),
                    buf.get<std::uint8_t>(2), buf.get<std::uint8_t>(3), buf.get<std::int32_t>(4),
                    buf.get<std::uint32_t>(8), static_cast<double>(buf.get<float>(12)));
        std::fflush(stdout);
    }
    return 0;
}
