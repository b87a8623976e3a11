// The Boost.Interprocess participant of the interop suite: real Boost, from Debian's headers,
// used as the seed's sender.cpp/recver.cpp use it (shared_memory_object + mapped_region).
// Raw layout only (Boost has no notion of ours). Command line: tests/interop/PROTOCOL.md.
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>
#include <zlib.h>

using namespace boost::interprocess;

namespace {

std::string esc(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if (static_cast<unsigned char>(c) < 0x20) { o += ' '; }
        else { o += c; }
    }
    return o;
}

struct Out {
    bool ok = true;
    std::vector<std::pair<std::string, std::string>> f;
    void num(const std::string& k, long long v) { f.emplace_back(k, std::to_string(v)); }
    void raw(const std::string& k, const std::string& v) { f.emplace_back(k, v); }
    void str(const std::string& k, const std::string& v) { f.emplace_back(k, "\"" + esc(v) + "\""); }
    int print() const {
        std::ostringstream o;
        o << "{\"ok\": " << (ok ? "true" : "false") << ", \"actor\": \"boost\"";
        for (auto& kv : f) o << ", \"" << kv.first << "\": " << kv.second;
        o << "}";
        std::cout << o.str() << std::endl;
        return ok ? 0 : 1;
    }
};

std::vector<unsigned char> pattern(std::size_t n, unsigned p) {
    std::vector<unsigned char> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>((i * 31 + p) % 251);
    return v;
}

unsigned long crc(const std::vector<unsigned char>& d) {
    // zlib's crc32 takes a uInt length: feed big buffers in pieces.
    unsigned long c = crc32(0L, Z_NULL, 0);
    std::size_t off = 0;
    while (off < d.size()) {
        std::size_t n = std::min<std::size_t>(d.size() - off, 1u << 30);
        c = crc32(c, d.data() + off, static_cast<uInt>(n));
        off += n;
    }
    return c;
}

const char* kind_of(const interprocess_exception& e) {
    switch (e.get_error_code()) {
        case already_exists_error: return "already_exists";
        case not_found_error: return "not_found";
        case security_error: return "permission_denied";
        case out_of_space_error: return "no_space";
        case size_error: return "invalid_size";
        default: return "os";
    }
}

template <class T>
void put(void* base, std::size_t off, T v) { std::memcpy(static_cast<char*>(base) + off, &v, sizeof v); }
template <class T>
T get(const void* base, std::size_t off) { T v; std::memcpy(&v, static_cast<const char*>(base) + off, sizeof v); return v; }

}  // namespace

int main(int argc, char** argv) {
    Out out;
    if (argc < 2) { out.ok = false; out.str("error", "usage"); return out.print(); }
    std::string cmd = argv[1];
    std::map<std::string, std::string> a;
    for (int i = 2; i + 1 < argc; i += 2) a[std::string(argv[i]).substr(2)] = argv[i + 1];
    const char* name = a["name"].c_str();
    try {
        if (cmd == "write") {
            if (a["layout"] != "raw") { out.ok = false; out.str("error", "unsupported"); return out.print(); }
            std::vector<unsigned char> data;
            if (a.count("file")) {
                std::ifstream f(a["file"], std::ios::binary);
                data.assign(std::istreambuf_iterator<char>(f), {});
            } else {
                data = pattern(std::stoull(a["size"]), std::stoul(a["pattern"]));
            }
            permissions perm;  // Boost's default: 0644
            if (a.count("perm")) perm.set_permissions(std::stoul(a["perm"], nullptr, 8));
            shared_memory_object shm(create_only, name, read_write, perm);
            try {
                shm.truncate(static_cast<offset_t>(data.size()));
                mapped_region region(shm, read_write);
                std::memcpy(region.get_address(), data.data(), data.size());
            } catch (...) {
                shared_memory_object::remove(name);  // do not leave a half-made segment
                throw;
            }
            out.num("bytes", static_cast<long long>(data.size()));
            out.num("crc32", static_cast<long long>(crc(data)));
        } else if (cmd == "read") {
            if (a["layout"] != "raw") { out.ok = false; out.str("error", "unsupported"); return out.print(); }
            shared_memory_object shm(open_only, name, read_only);
            mapped_region region(shm, read_only);
            auto* p = static_cast<const unsigned char*>(region.get_address());
            std::vector<unsigned char> data(p, p + region.get_size());
            if (a.count("out")) {
                std::ofstream f(a["out"], std::ios::binary);
                f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
            }
            if (a.count("pattern") && data != pattern(data.size(), std::stoul(a["pattern"]))) {
                out.ok = false;
                out.str("error", "mismatch");
            }
            out.num("bytes", static_cast<long long>(data.size()));
            out.num("crc32", static_cast<long long>(crc(data)));
        } else if (cmd == "fields-write") {
            shared_memory_object shm(create_only, name, read_write, permissions(0600));
            shm.truncate(1024);
            mapped_region r(shm, read_write);
            put<std::uint8_t>(r.get_address(), 0, 128);
            put<std::int32_t>(r.get_address(), 4, -1);
            put<std::uint32_t>(r.get_address(), 8, 1);
            put<float>(r.get_address(), 12, 2.0f);
        } else if (cmd == "fields-modify") {
            shared_memory_object shm(open_only, name, read_write);
            mapped_region r(shm, read_write);
            put<std::uint8_t>(r.get_address(), 1, 127);
            put<std::uint8_t>(r.get_address(), 2, 255);
            put<std::int32_t>(r.get_address(), 4, -128);
            put<std::uint32_t>(r.get_address(), 8, 6666);
            put<float>(r.get_address(), 12, 1.414f);
        } else if (cmd == "fields-read") {
            shared_memory_object shm(open_only, name, read_only);
            mapped_region r(shm, read_only);
            const void* b = r.get_address();
            for (int i = 0; i < 4; ++i) out.num("b" + std::to_string(i), get<std::uint8_t>(b, i));
            out.num("i32", get<std::int32_t>(b, 4));
            out.num("u32", get<std::uint32_t>(b, 8));
            char f32[64];
            std::snprintf(f32, sizeof f32, "%.6f", static_cast<double>(get<float>(b, 12)));
            out.raw("f32", f32);
        } else if (cmd == "open") {
            std::string mode = a["mode"];
            offset_t size = std::stoll(a["size"]);
            bool created = false;
            offset_t real = 0;
            if (mode == "create_only") {
                shared_memory_object shm(create_only, name, read_write);
                shm.truncate(size);
                created = true;
                shm.get_size(real);
            } else if (mode == "open_only") {
                shared_memory_object shm(open_only, name, read_write);
                shm.get_size(real);
            } else {
                shared_memory_object shm(open_or_create, name, read_write);
                shm.get_size(real);
                if (real == 0) { shm.truncate(size); created = true; shm.get_size(real); }
            }
            out.raw("created", created ? "true" : "false");
            out.num("size", static_cast<long long>(real));
        } else {
            out.ok = false;
            out.str("error", "unsupported");
            out.str("message", "the boost participant has no command " + cmd);
        }
    } catch (const interprocess_exception& e) {
        out.ok = false;
        out.str("error", kind_of(e));
        out.str("message", std::string("segment \"") + name + "\": " + e.what());
    } catch (const std::exception& e) {
        out.ok = false;
        out.str("error", "os");
        out.str("message", e.what());
    }
    return out.print();
}
