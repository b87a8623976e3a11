// file_reader: the seed's mmap reader for Linux in C++. The writer made a file holding an
// 8-byte little-endian length ("Q") followed by the data; we map the file read-only (no read()
// into private memory), check the length against the real file size, and write the data out.
//
// Usage: file_reader [path=/tmp/shm_test] [out=result.zip]
#include <shmbridge.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <vector>

using namespace shmbridge;

int main(int argc, char** argv) {
    const char* path = argc > 1 ? argv[1] : "/tmp/shm_test";
    const char* out_path = argc > 2 ? argv[2] : "result.zip";
    try {
        file_mapping file(path, read_only);
        mapped_region region(file, read_only);  // the whole file, like mmap(..., 0)
        // size = struct.unpack("Q", shm[:8])[0], but checked: a length that claims more than
        // the file holds throws SHMB_TRUNCATED instead of reading past the end.
        const std::uint64_t size = region.get<std::uint64_t>(0);
        std::vector<unsigned char> data = region.read_prefixed();
        std::ofstream out(out_path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(data.data()),
                  static_cast<std::streamsize>(data.size()));
        if (!out) {
            std::fprintf(stderr, "file_reader: cannot write %s\n", out_path);
            return 1;
        }
        std::printf("file_reader: %llu bytes from %s (%zu mapped) -> %s\n",
                    static_cast<unsigned long long>(size), path, region.get_size(), out_path);
    } catch (const shmbridge::error& e) {
        std::fprintf(stderr, "file_reader: %s\n", e.what());
        return 1;
    }
    return 0;
}
