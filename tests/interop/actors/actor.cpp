// The C++ participant of the interop suite: shmbridge.hpp only, used the way the seed's
// sender.cpp/recver.cpp use Boost (shared_memory_object + mapped_region), plus the framed class.
// Command line: tests/interop/PROTOCOL.md.
#include <shmbridge.hpp>

#include <unistd.h>

#include <chrono>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <zlib.h>

using namespace shmbridge;

namespace {

const char* kind(shmb_result r) {
    switch (r) {
        case SHMB_INVALID_SIZE: return "invalid_size";
        case SHMB_ALREADY_EXISTS: return "already_exists";
        case SHMB_NOT_FOUND: return "not_found";
        case SHMB_PERMISSION_DENIED: return "permission_denied";
        case SHMB_BAD_MAGIC: return "bad_magic";
        case SHMB_UNSUPPORTED_VERSION: return "unsupported_version";
        case SHMB_CORRUPT_HEADER: return "corrupt_header";
        case SHMB_TRUNCATED: return "truncated";
        case SHMB_CHECKSUM_MISMATCH: return "checksum_mismatch";
        case SHMB_TIMEOUT: return "timeout";
        case SHMB_UNSUPPORTED: return "unsupported";
        case SHMB_INVALID_ARGUMENT: return "invalid_argument";
        case SHMB_OUT_OF_BOUNDS: return "out_of_bounds";
        case SHMB_WRITER_CLOSED: return "writer_closed";
        case SHMB_PEER_GONE: return "peer_gone";
        case SHMB_CLOSED: return "closed";
        case SHMB_ABORTED: return "aborted";
        default: return "os";
    }
}

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
    std::ostringstream f;
    Out& num(const char* k, long long v) { f << ", \"" << k << "\": " << v; return *this; }
    Out& raw(const char* k, const std::string& v) { f << ", \"" << k << "\": " << v; return *this; }
    Out& str(const char* k, const std::string& v) { return raw(k, "\"" + esc(v) + "\""); }
    int print() const {
        std::cout << "{\"ok\": " << (ok ? "true" : "false") << ", \"actor\": \"cpp\"" << f.str() << "}" << std::endl;
        return ok ? 0 : 1;
    }
};

using bytes = std::vector<unsigned char>;

bytes pattern(std::size_t n, unsigned p) {
    bytes v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>((i * 31 + p) % 251);
    return v;
}

unsigned long crc(const bytes& d) {
    unsigned long c = crc32(0L, Z_NULL, 0);
    for (std::size_t off = 0; off < d.size();) {
        std::size_t n = std::min<std::size_t>(d.size() - off, 1u << 30);
        c = crc32(c, d.data() + off, static_cast<uInt>(n));
        off += n;
    }
    return c;
}

// Channels (PROTOCOL.md, "Channels"): message i has length 1 + (i * 7919) % S, byte j is
// (i * 31 + j) % 256, tag i.
std::size_t chan_len(std::uint64_t i, std::uint64_t size) {
    return 1 + static_cast<std::size_t>((i * 7919) % size);
}

bool chan_ok(const channel_message& m, std::uint64_t size) {
    if (m.size() != chan_len(m.seq(), size) || m.tag() != static_cast<std::uint32_t>(m.seq())) return false;
    for (std::size_t j = 0; j < m.size(); ++j)
        if (m.bytes()[j] != static_cast<unsigned char>((m.seq() * 31 + j) % 256)) return false;
    return true;
}

// Typed arrays (PROTOCOL.md, "Arrays"): element k (in C order) has byte b
// (k * 13 + b * 7 + seed) % 251, a bool element (k + seed) % 2.
std::vector<std::uint64_t> shape_arg(const std::string& text) {
    std::vector<std::uint64_t> shape;
    if (text == "()" || text.empty()) return shape;
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) shape.push_back(std::stoull(part));
    return shape;
}

std::vector<std::string> list_arg(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) out.push_back(part);
    return out;
}

// The strides of order S: every other element along every dimension, the first reversed.
std::vector<std::int64_t> s_strides(const std::vector<std::uint64_t>& shape, std::size_t item) {
    std::vector<std::int64_t> s(shape.size());
    std::int64_t step = 2 * static_cast<std::int64_t>(item);
    for (std::size_t d = shape.size(); d-- > 0;) {
        s[d] = step;
        step *= 2 * static_cast<std::int64_t>(shape[d] ? shape[d] : 1);
    }
    if (!s.empty()) s[0] = -s[0];
    return s;
}

// Element k (in C order) of the protocol's array: v = (k * 7 + 3 + seed) % 101 as T (a bool:
// v % 3 == 0; a complex: v + (100 - v)i).
template <class T>
T element(std::uint64_t k, std::uint64_t seed) {
    const auto v = static_cast<unsigned>((k * 7 + 3 + seed) % 101), w = 100 - v;
    if constexpr (std::is_same_v<T, bool8>) {
        return bool8(v % 3 == 0);
    } else if constexpr (std::is_same_v<T, float16>) {
        return float16::from_float(static_cast<float>(v));
    } else if constexpr (std::is_same_v<T, std::complex<float>> || std::is_same_v<T, std::complex<double>>) {
        using F = typename T::value_type;
        return T(static_cast<F>(v), static_cast<F>(w));
    } else {
        return static_cast<T>(v);
    }
}

template <class T>
void fill(const array_ref<T>& a, std::uint64_t seed) {
    std::vector<std::uint64_t> idx(a.ndim(), 0);
    for (std::size_t k = 0; k < a.size(); ++k) {
        a.at(idx) = element<T>(k, seed);
        for (std::size_t d = a.ndim(); d-- > 0;) {
            if (++idx[d] < a.shape()[d]) break;
            idx[d] = 0;
        }
    }
}

// The first element (in C order) of `v` that differs from the pattern, or -1.
// The first element (in C order) of `v` that differs from the protocol's (a bool: zero or
// not), or -1.
template <class T>
long long first_bad(const std::vector<T>& v, std::uint64_t seed) {
    for (std::size_t k = 0; k < v.size(); ++k) {
        const T want = element<T>(k, seed);
        bool same;
        if constexpr (std::is_same_v<T, bool8>) same = static_cast<bool>(v[k]) == static_cast<bool>(want);
        else same = std::memcmp(&v[k], &want, sizeof want) == 0;
        if (!same) return static_cast<long long>(k);
    }
    return -1;
}

template <class V>
std::string json_list(const V& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
}

template <class A>
void describe(Out& out, const A& a, shmb_dtype d) {
    out.str("dtype", dtype_name(d)).raw("shape", json_list(a.shape())).raw("strides", json_list(a.strides()));
}

// Call f(T{}) for the element type named `name`.
template <class F>
void with_dtype(const std::string& name, F&& f) {
    if (name == "bool") return f(bool8{});
    if (name == "int8") return f(std::int8_t{});
    if (name == "int16") return f(std::int16_t{});
    if (name == "int32") return f(std::int32_t{});
    if (name == "int64") return f(std::int64_t{});
    if (name == "uint8") return f(std::uint8_t{});
    if (name == "uint16") return f(std::uint16_t{});
    if (name == "uint32") return f(std::uint32_t{});
    if (name == "uint64") return f(std::uint64_t{});
    if (name == "float16") return f(float16{});
    if (name == "float32") return f(float{});
    if (name == "float64") return f(double{});
    if (name == "complex64") return f(std::complex<float>{});
    if (name == "complex128") return f(std::complex<double>{});
    throw std::invalid_argument("unknown --dtype " + name);
}

std::vector<std::int64_t> want_strides(const std::string& order, const std::vector<std::uint64_t>& shape,
                                       std::size_t item) {
    if (order == "S") return s_strides(shape, item);
    std::vector<std::int64_t> s(shape.size());
    std::int64_t step = static_cast<std::int64_t>(item);
    if (order == "C") {
        for (std::size_t d = shape.size(); d-- > 0;) {
            s[d] = step;
            step *= static_cast<std::int64_t>(shape[d] ? shape[d] : 1);
        }
    } else if (order == "F") {
        for (std::size_t d = 0; d < shape.size(); ++d) {
            s[d] = step;
            step *= static_cast<std::int64_t>(shape[d] ? shape[d] : 1);
        }
    } else {
        throw std::invalid_argument("--order is C, F or S");
    }
    return s;
}

void mismatch(Out& out, const std::string& why) {
    out.ok = false;
    out.str("error", "mismatch").str("message", why);
}

void array_write(std::map<std::string, std::string>& a, Out& out) {
    const auto shape = shape_arg(a["shape"]);
    const std::string order = a.count("order") ? a["order"] : "C";
    const std::uint64_t seed = a.count("seed") ? std::stoull(a["seed"]) : 0;
    with_dtype(a["dtype"], [&](auto t) {
        using T = decltype(t);
        const auto strides = want_strides(order, shape, sizeof(T));
        shared_array<T> arr = order == "S"
                                  ? shared_array<T>(create_only, a["name"], shape, strides)
                                  : shared_array<T>(create_only, a["name"], shape,
                                                    order == "F" ? array_order::f : array_order::c);
        auto w = arr.write();
        fill(arr.view(), seed);
        w.publish();
        describe(out, arr, dtype_code_v<T>);
        out.num("elements", static_cast<long long>(arr.size()))
            .num("bytes", static_cast<long long>(arr.view().data_len()))
            .num("version", static_cast<long long>(arr.version()));
    });
}

void array_read(std::map<std::string, std::string>& a, Out& out) {
    const auto shape = shape_arg(a["shape"]);
    const std::uint64_t seed = a.count("seed") ? std::stoull(a["seed"]) : 0;
    with_dtype(a["dtype"], [&](auto t) {
        using T = decltype(t);
        shared_array<T> arr(open_only, a["name"], read_only, std::chrono::seconds(30));
        const std::string order = a.count("order") ? a["order"] : "C";
        if (arr.shape() != shape || arr.strides() != want_strides(order, shape, sizeof(T)))
            return mismatch(out, "got shape " + json_list(arr.shape()) + " strides " + json_list(arr.strides()));
        std::uint64_t version = 0;
        const auto v = arr.copy(&version);
        const long long bad = first_bad(v, seed);
        if (bad >= 0) return mismatch(out, "element " + std::to_string(bad) + " differs from the pattern");
        describe(out, arr, dtype_code_v<T>);
        out.num("checked", static_cast<long long>(v.size()))
            .num("bytes", static_cast<long long>(arr.view().data_len()))
            .num("version", static_cast<long long>(version));
    });
}

void chan_array_write(std::map<std::string, std::string>& a, Out& out) {
    const auto shape = shape_arg(a["shape"]);
    const auto dtypes = list_arg(a["dtypes"]);
    const std::string order = a["order"];
    const std::uint64_t count = std::stoull(a["count"]);
    const std::size_t wait_readers = a.count("wait-readers") ? std::stoul(a["wait-readers"]) : 0;
    channel_options o;
    o.slots = 4;
    o.readers = 2;
    o.max_message = std::stoull(a["size"]);
    channel_writer w(create_only, a["name"], o);
    std::cout << "{\"ready\": true}" << std::endl;
    while (w.status().places.size() < wait_readers) ::usleep(1000);
    for (std::uint64_t i = 0; i < count; ++i)
        with_dtype(dtypes.at(i % dtypes.size()), [&](auto t) {
            using T = decltype(t);
            auto l = order == "S" ? w.loan_array<T>(shape, s_strides(shape, sizeof(T)))
                                  : w.loan_array<T>(shape, order == "F" ? array_order::f : array_order::c);
            fill(l.view(), i);
            l.publish(static_cast<std::uint32_t>(i));
        });
    w.close();
    out.num("sent", static_cast<long long>(count));
}

void chan_array_read(std::map<std::string, std::string>& a, Out& out) {
    const auto shape = shape_arg(a["shape"]);
    const auto dtypes = list_arg(a["dtypes"]);
    channel_reader r(open_only, a["name"], std::chrono::seconds(30));
    std::cout << "{\"joined\": true}" << std::endl;
    long long received = 0;
    for (channel_message& m : r.messages()) {
        bool ok = true;
        with_dtype(dtypes.at(m.seq() % dtypes.size()), [&](auto t) {
            using T = decltype(t);
            auto arr = m.array<T>();
            const std::string order = a.count("order") ? a["order"] : "C";
        if (arr.shape() != shape || arr.strides() != want_strides(order, shape, sizeof(T))) {
                ok = false;
                return mismatch(out, "message " + std::to_string(m.seq()) + ": shape " +
                                         json_list(arr.shape()) + " strides " + json_list(arr.strides()));
            }
            const long long bad = first_bad(arr.to_vector(), m.seq());
            if (bad >= 0) {
                ok = false;
                mismatch(out, "message " + std::to_string(m.seq()) + ": element " + std::to_string(bad) +
                                  " differs from the pattern");
            }
        });
        if (!ok) return;
        ++received;
    }
    out.num("received", received);
}

void chan_write(std::map<std::string, std::string>& a, Out& out) {
    channel_options o;
    o.slots = static_cast<std::uint32_t>(std::stoul(a["slots"]));
    o.readers = static_cast<std::uint32_t>(std::stoul(a["readers"]));
    o.max_message = std::stoull(a["size"]);
    if (a["policy"] == "block") o.policy = channel_policy::block;
    else if (a["policy"] == "overwrite") o.policy = channel_policy::overwrite;
    else throw std::invalid_argument("--policy is block or overwrite");
    const std::uint64_t count = std::stoull(a["count"]);
    const std::uint64_t wait_readers = a.count("wait-readers") ? std::stoull(a["wait-readers"]) : 0;
    const bool dies = a.count("die-after") != 0;
    const std::uint64_t stop = dies ? std::stoull(a["die-after"]) : count;
    channel_writer w(create_only, a["name"], o);
    std::cout << "{\"ready\": true}" << std::endl;
    for (;;) {
        std::size_t live = 0;
        for (const channel_place& p : w.status().places) live += p.active && p.alive;
        if (live >= wait_readers) break;
        ::usleep(1000);
    }
    for (std::uint64_t i = 0; i < stop; ++i) {
        const std::size_t n = chan_len(i, o.max_message);
        channel_loan loan = w.loan(n);  // no time limit
        for (std::size_t j = 0; j < n; ++j) loan.bytes()[j] = static_cast<unsigned char>((i * 31 + j) % 256);
        loan.publish(n, static_cast<std::uint32_t>(i));
    }
    if (dies) ::_exit(0);  // as if killed: no close, no clean-up, no JSON line
    w.close();
    out.num("sent", static_cast<long long>(count));
}

void chan_read(std::map<std::string, std::string>& a, Out& out) {
    const std::uint64_t die = a.count("die-after") ? std::stoull(a["die-after"]) : UINT64_MAX;
    const std::size_t hold = a.count("hold") ? std::stoull(a["hold"]) : 0;
    channel_reader r(open_only, a["name"], std::chrono::seconds(30));
    std::cout << "{\"joined\": true}" << std::endl;
    if (die == 0) ::_exit(0);
    const std::uint64_t size = r.max_message();
    std::deque<channel_message> held;
    std::uint64_t received = 0, lost = 0, first = 0, last = 0;
    std::string end;
    for (;;) {
        channel_message m;
        try {
            m = r.recv();
        } catch (const error& e) {
            if (e.code() == SHMB_WRITER_CLOSED) end = "closed";
            else if (e.code() == SHMB_PEER_GONE) end = "writer_died";
            else throw;
            break;
        }
        if (!chan_ok(m, size)) {
            out.ok = false;
            out.str("error", "torn_message")
                .str("message", "message " + std::to_string(m.seq()) + ": " + std::to_string(m.size()) +
                                    " bytes, tag " + std::to_string(m.tag()) + ", not the pattern's");
            return;
        }
        if (received == 0) first = m.seq();
        last = m.seq();
        ++received;
        lost += m.lost();
        if (received == die) ::_exit(0);  // as if killed, holding this message
        held.push_back(std::move(m));
        if (held.size() > hold) held.pop_front();  // releases the oldest
    }
    out.num("received", static_cast<long long>(received)).num("lost", static_cast<long long>(lost));
    out.raw("first", received ? std::to_string(first) : "null");
    out.raw("last", received ? std::to_string(last) : "null");
    out.str("end", end);
}

int run(const std::string& cmd, std::map<std::string, std::string>& a, Out& out) {
    const char* name = a["name"].c_str();
    const std::string& layout = a["layout"];
    if (cmd == "write") {
        bytes data;
        if (a.count("file")) {
            std::ifstream f(a["file"], std::ios::binary);
            data.assign(std::istreambuf_iterator<char>(f), {});
        } else {
            data = pattern(std::stoull(a["size"]), std::stoul(a["pattern"]));
        }
        permissions perm;
        if (a.count("perm")) perm.set_permissions(std::stoul(a["perm"], nullptr, 8));
        if (layout == "framed") {
            framed_segment f(create_only, name, data.size(), perm);
            f.write(data.data(), data.size());
        } else {
            bool prefixed = layout == "size-prefixed";
            shared_memory_object shm(create_only, name, read_write, perm);
            try {
                shm.truncate(static_cast<offset_t>(data.size() + (prefixed ? 8 : 0)));
                mapped_region region(shm, read_write);
                if (prefixed) region.write_prefixed(data.data(), data.size());
                else std::memcpy(region.get_address(), data.data(), data.size());
            } catch (...) {
                shared_memory_object::remove(name);  // never leave a half-made segment
                throw;
            }
        }
        out.num("bytes", static_cast<long long>(data.size())).num("crc32", static_cast<long long>(crc(data)));
    } else if (cmd == "read") {
        bytes data;
        if (layout == "framed") {
            data = framed_segment(open_only, name, read_only).read();
        } else {
            shared_memory_object shm(open_only, name, read_only);
            mapped_region region(shm, read_only);
            if (layout == "size-prefixed") {
                data = region.read_prefixed();
            } else {
                auto* p = static_cast<const unsigned char*>(region.get_address());
                data.assign(p, p + region.get_size());
            }
        }
        if (a.count("out")) {
            std::ofstream f(a["out"], std::ios::binary);
            f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
        }
        if (a.count("pattern") && data != pattern(data.size(), std::stoul(a["pattern"]))) {
            out.ok = false;
            out.str("error", "mismatch");
        }
        out.num("bytes", static_cast<long long>(data.size())).num("crc32", static_cast<long long>(crc(data)));
    } else if (cmd == "fields-write") {  // the seed's program1
        shared_memory_object shm(create_only, name, read_write);
        shm.truncate(1024);
        mapped_region r(shm, read_write);
        r.set<std::uint8_t>(0, 128);
        r.set<std::int32_t>(4, -1);
        r.set<std::uint32_t>(8, 1);
        r.set<float>(12, 2.0f);
    } else if (cmd == "fields-modify") {  // the seed's program2
        shared_memory_object shm(open_only, name, read_write);
        mapped_region r(shm, read_write);
        r.set<std::uint8_t>(1, 127);
        r.set<std::uint8_t>(2, 255);
        r.set<std::int32_t>(4, -128);
        r.set<std::uint32_t>(8, 6666);
        r.set<float>(12, 1.414f);
    } else if (cmd == "fields-read") {
        shared_memory_object shm(open_only, name, read_only);
        mapped_region r(shm, read_only);
        const char* keys[] = {"b0", "b1", "b2", "b3"};
        for (int i = 0; i < 4; ++i) out.num(keys[i], r.get<std::uint8_t>(i));
        out.num("i32", r.get<std::int32_t>(4)).num("u32", r.get<std::uint32_t>(8));
        char f32[64];
        std::snprintf(f32, sizeof f32, "%.6f", static_cast<double>(r.get<float>(12)));
        out.raw("f32", f32);
    } else if (cmd == "open") {
        const std::string& mode = a["mode"];
        offset_t size = std::stoull(a["size"]);
        bool created = false;
        if (mode == "create_only") {
            shared_memory_object shm(create_only, name, read_write);
            shm.truncate(size);
            created = true;
            out.num("size", static_cast<long long>(shm.get_size()));
        } else if (mode == "open_only") {
            shared_memory_object shm(open_only, name, read_write);
            out.num("size", static_cast<long long>(shm.get_size()));
        } else {
            shared_memory_object shm(open_or_create, name, read_write);
            created = shm.created();
            if (created) shm.truncate(size);
            out.num("size", static_cast<long long>(shm.get_size()));
        }
        out.raw("created", created ? "true" : "false");
    } else if (cmd == "write-readonly") {
        shared_memory_object shm(open_only, name, read_only);
        mapped_region r(shm, read_only);
        try {
            r.write(0, "X", 1);
            out.ok = false;
            out.str("error", "not_refused");
        } catch (const error& e) {
            out.raw("refused", "true").str("error", kind(e.code())).str("message", e.what());
        }
    } else if (cmd == "chan-write") {
        chan_write(a, out);
    } else if (cmd == "chan-read") {
        chan_read(a, out);
    } else if (cmd == "array-write") {
        array_write(a, out);
    } else if (cmd == "array-read") {
        array_read(a, out);
    } else if (cmd == "chan-array-write") {
        chan_array_write(a, out);
    } else if (cmd == "chan-array-read") {
        chan_array_read(a, out);
    } else {
        out.ok = false;
        out.str("error", "usage").str("message", "unknown command " + cmd);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Out out;
    if (argc < 2) {
        out.ok = false;
        out.str("error", "usage");
        return out.print();
    }
    std::map<std::string, std::string> a;
    for (int i = 2; i + 1 < argc; i += 2) a[std::string(argv[i]).substr(2)] = argv[i + 1];
    try {
        run(argv[1], a, out);
    } catch (const error& e) {
        out.ok = false;
        out.str("error", kind(e.code())).str("message", e.what()).num("errno", e.sys_errno());
    } catch (const std::exception& e) {  // a bad number on the command line, say
        out.ok = false;
        out.str("error", "usage").str("message", e.what());
    }
    return out.print();
}
