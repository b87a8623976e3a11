// recv_file.cpp: receive the file sent through the segment NAME into OUT.
// Usage: recv_file NAME OUT [TIMEOUT_SECONDS]    (waits up to 60 s by default for the sender)
#include <shmbridge.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

using namespace shmbridge;

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::cerr << "usage: recv_file NAME OUT [TIMEOUT_SECONDS]\n";
        return 2;
    }
    try {
        // Waits for the segment and its payload (one-shot or stream), writes OUT beside itself
        // and renames it into place only once the byte count and CRC-32 are verified.
        recv_options opts;
        opts.timeout = std::chrono::seconds(argc == 4 ? std::atoi(argv[3]) : 60);
        transfer_report r = recv_file(argv[1], argv[2], opts);
        std::printf("received %llu bytes (crc32 %08x verified, %s) into %s in %.3f s, %.0f MiB/s\n",
                    static_cast<unsigned long long>(r.bytes), r.crc32,
                    r.mode == transfer_mode::stream ? "streamed" : "one-shot", argv[2],
                    std::chrono::duration<double>(r.elapsed).count(),
                    r.throughput() / (1024.0 * 1024.0));
    } catch (const error& e) {
        std::cerr << "recv_file: " << e.what() << " (code " << e.code() << ", errno "
                  << e.sys_errno() << ")\n";
        return 1;
    }
}
