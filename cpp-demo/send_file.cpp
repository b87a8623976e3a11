// send_file.cpp: send FILE through the shared-memory segment NAME, one-shot.
// Usage: send_file FILE NAME    (then, in any process: recv_file NAME OUT, or shmbridge recv)
#include <shmbridge.hpp>
#include <cstdio>
#include <iostream>

using namespace shmbridge;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: send_file FILE NAME\n";
        return 2;
    }
    try {
        // One segment sized to the file: filled, published with its CRC-32, left for the
        // receiver (who removes it).
        send_options opts;
        opts.mode = transfer_mode::one_shot;
        transfer_report r = send_file(argv[1], argv[2], opts);
        std::printf("sent %llu bytes (crc32 %08x) into %s in %.3f s, %.0f MiB/s\n",
                    static_cast<unsigned long long>(r.bytes), r.crc32, argv[2],
                    std::chrono::duration<double>(r.elapsed).count(),
                    r.throughput() / (1024.0 * 1024.0));
    } catch (const error& e) {
        std::cerr << "send_file: " << e.what() << " (code " << e.code() << ", errno "
                  << e.sys_errno() << ")\n";
        return 1;
    }
}
