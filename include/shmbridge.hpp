// shmbridge.hpp: a header-only C++17 wrapper over the C ABI (shmbridge.h), shaped like
// Boost.Interprocess. Code written for boost::interprocess::shared_memory_object and
// mapped_region compiles against it with `using namespace shmbridge;`:
//
//     shared_memory_object shm(create_only, "shm_test", read_write);
//     shm.truncate(size);
//     mapped_region region(shm, read_write);
//     std::memcpy(region.get_address(), data, region.get_size());
//
// Every handle is a move-only RAII owner of one C object; a constructor that fails throws
// shmbridge::error (with the shmb_result code and the OS errno) and leaks nothing. Closing a
// handle never removes a name: remove() does, and never throws.
#ifndef SHMBRIDGE_HPP
#define SHMBRIDGE_HPP

#include <shmbridge.h>

#include <array>
#include <chrono>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

// C++20: messages and loans also give a std::span over their bytes.
#if __cplusplus >= 202002L && defined(__has_include)
#if __has_include(<span>)
#include <span>
#endif
#endif
#if defined(__cpp_lib_span)
#define SHMBRIDGE_HAS_SPAN 1
#else
#define SHMBRIDGE_HAS_SPAN 0
#endif

// C++23: typed arrays also give a std::mdspan (layout_stride) where the standard library has
// <mdspan> (__cpp_lib_mdspan). g++ 12 (libstdc++ 12) has none, so it is compiled out there.
#if __cplusplus > 202002L && defined(__has_include)
#if __has_include(<mdspan>)
#include <mdspan>
#endif
#endif
#if defined(__cpp_lib_mdspan)
#define SHMBRIDGE_HAS_MDSPAN 1
#else
#define SHMBRIDGE_HAS_MDSPAN 0
#endif

namespace shmbridge {

/// Offsets and sizes of objects (Boost's `offset_t`).
using offset_t = std::uint64_t;

/// The error every failing operation throws: the shmb_result code, the OS errno (0 when the
/// failure did not come from the OS) and the library's detailed message.
class error : public std::runtime_error {
public:
    error(shmb_result code, int sys_errno, const std::string& what)
        : std::runtime_error(what), code_(code), errno_(sys_errno) {}

    /// The shmb_result code (SHMB_NOT_FOUND, SHMB_ALREADY_EXISTS, ...).
    shmb_result code() const noexcept { return code_; }
    /// The OS errno, or 0.
    int sys_errno() const noexcept { return errno_; }
    /// Boost's name for code().
    shmb_result get_error_code() const noexcept { return code_; }
    /// Boost's name for sys_errno().
    int get_native_error() const noexcept { return errno_; }

private:
    shmb_result code_;
    int errno_;
};

namespace detail {

/// The message of the last failure on this thread (or of `code` if there is none).
inline std::string last_message(shmb_result code) {
    char small[256];
    std::size_t n = 0;
    shmb_result r = shmb_last_error_message(small, sizeof small, &n);
    if (r == SHMB_OK && n > 0) return std::string(small, n);
    if (r == SHMB_BUFFER_TOO_SMALL) {
        std::string big(n + 1, '\0');
        if (shmb_last_error_message(&big[0], big.size(), &n) == SHMB_OK) {
            big.resize(n);
            return big;
        }
    }
    if (shmb_result_message(static_cast<std::uint32_t>(code), small, sizeof small, &n) == SHMB_OK)
        return std::string(small, n);
    return "shmbridge error " + std::to_string(static_cast<unsigned>(code));
}

/// Throw shmbridge::error unless `r` is SHMB_OK.
inline void check(shmb_result r) {
    if (r != SHMB_OK) {
        int e = shmb_last_error_code() == r ? shmb_last_error_errno() : 0;
        throw error(r, e, last_message(r));
    }
}

template <class T, void (*Free)(T*)>
struct deleter {
    void operator()(T* p) const noexcept { Free(p); }
};

template <class T, void (*Free)(T*)>
using handle = std::unique_ptr<T, deleter<T, Free>>;

}  // namespace detail

/// Tag types for the open mode, as in Boost.Interprocess.
struct create_only_t {};
struct open_only_t {};
struct open_or_create_t {};
/// Create; throw (SHMB_ALREADY_EXISTS) if the name is taken.
inline constexpr create_only_t create_only{};
/// Open an existing object; throw (SHMB_NOT_FOUND) if there is none.
inline constexpr open_only_t open_only{};
/// Open it if it exists, create it otherwise.
inline constexpr open_or_create_t open_or_create{};

/// Access modes, with Boost's names.
enum mode_t : shmb_access {
    read_only = SHMB_READ_ONLY,
    read_write = SHMB_READ_WRITE,
    copy_on_write = SHMB_COPY_ON_WRITE,
};

/// Permission bits of a created object (Boost's `permissions`). The default is 0600, as for
/// CPython's SharedMemory; set_unrestricted() gives 0666. Applied exactly, whatever the umask.
class permissions {
public:
    permissions() noexcept = default;
    permissions(unsigned bits) noexcept : bits_(bits) {}  // NOLINT: implicit, as in Boost
    void set_default() noexcept { bits_ = SHMB_PERM_DEFAULT; }
    void set_unrestricted() noexcept { bits_ = 0666; }
    void set_permissions(unsigned bits) noexcept { bits_ = bits; }
    unsigned get_permissions() const noexcept { return bits_; }

private:
    unsigned bits_ = SHMB_PERM_DEFAULT;
};

/// A time limit; std::nullopt waits without one.
using timeout_t = std::optional<std::chrono::milliseconds>;

/// Called from the waiting thread at least every 100 ms while a call waits; return true to stop
/// the call, which then throws shmbridge::error with SHMB_ABORTED (or rethrows what the
/// interrupt threw).
using interrupt_fn = std::function<bool()>;

/// How long a blocking call may wait, and who may stop it early: a timeout (none by default)
/// and an interrupt. Converts implicitly from a duration, a timeout_t or std::nullopt, so
/// `segment.wait(seen, 500ms)` and `reader.read(buf, n, {5s, stop_requested})` both work. A
/// duration too long to count in milliseconds waits without a limit; a negative one is an
/// error (SHMB_INVALID_ARGUMENT).
class wait_options {
public:
    wait_options() = default;
    wait_options(std::nullopt_t) noexcept {}  // NOLINT: implicit on purpose
    wait_options(timeout_t t) noexcept : timeout_ms_(t ? to_ms(*t) : SHMB_TIMEOUT_FOREVER) {}  // NOLINT
    template <class Rep, class Period>
    wait_options(std::chrono::duration<Rep, Period> d) noexcept : timeout_ms_(to_ms(d)) {}  // NOLINT
    template <class Rep, class Period>
    wait_options(std::chrono::duration<Rep, Period> d, interrupt_fn interrupt)
        : timeout_ms_(to_ms(d)), interrupt_(std::move(interrupt)) {}
    wait_options(std::nullopt_t, interrupt_fn interrupt) : interrupt_(std::move(interrupt)) {}

    /// The timeout in milliseconds as the C ABI takes it (SHMB_TIMEOUT_FOREVER: none).
    std::int64_t timeout_ms() const noexcept { return timeout_ms_; }
    const interrupt_fn& interrupt() const noexcept { return interrupt_; }

    /// A duration as the C ABI's timeout_ms.
    template <class Rep, class Period>
    static std::int64_t to_ms(std::chrono::duration<Rep, Period> d) noexcept {
        using ms = std::chrono::milliseconds;
        if (d < std::chrono::duration<Rep, Period>::zero()) return INT64_MIN;  // refused by the ABI
        const long double count = std::chrono::duration<long double, std::milli>(d).count();
        if (count >= static_cast<long double>(ms::max().count())) return SHMB_TIMEOUT_FOREVER;
        return std::chrono::ceil<ms>(d).count();
    }

private:
    std::int64_t timeout_ms_ = SHMB_TIMEOUT_FOREVER;
    interrupt_fn interrupt_;
};

namespace detail {

/// A wait_options as the C ABI takes it, and the exception its interrupt threw, if any: no
/// exception crosses the C ABI; it is kept, turned into a stop request, and rethrown once the
/// C call has returned.
struct wait_ctx {
    shmb_wait c{};
    const interrupt_fn* fn = nullptr;
    std::exception_ptr error;

    explicit wait_ctx(const wait_options& w) {
        shmb_wait_init(&c);
        c.timeout_ms = w.timeout_ms();
        if (w.interrupt()) {
            fn = &w.interrupt();
            c.interrupt = &trampoline;
            c.interrupt_user = this;
        }
    }
    wait_ctx(const wait_ctx&) = delete;
    wait_ctx& operator=(const wait_ctx&) = delete;

    static int trampoline(void* user) noexcept {
        auto* ctx = static_cast<wait_ctx*>(user);
        try {
            return (*ctx->fn)() ? 1 : 0;
        } catch (...) {
            ctx->error = std::current_exception();
            return 1;
        }
    }

    /// Throw for `r` (rethrowing the interrupt's exception when it caused the stop).
    void check(shmb_result r) const {
        if (r == SHMB_ABORTED && error) std::rethrow_exception(error);
        detail::check(r);
    }
};

}  // namespace detail

class mapped_region;
class file_mapping;

/// A named shared-memory object (Boost's `shared_memory_object`): a created one starts at size
/// 0; give it a size with truncate(), then map it with mapped_region.
class shared_memory_object {
public:
    shared_memory_object() noexcept = default;

    shared_memory_object(create_only_t, const char* name, mode_t mode,
                         const permissions& perm = permissions())
        : shared_memory_object(SHMB_CREATE_ONLY, name, mode, perm) {}
    shared_memory_object(open_or_create_t, const char* name, mode_t mode,
                         const permissions& perm = permissions())
        : shared_memory_object(SHMB_OPEN_OR_CREATE, name, mode, perm) {}
    shared_memory_object(open_only_t, const char* name, mode_t mode)
        : shared_memory_object(SHMB_OPEN_ONLY, name, mode, permissions()) {}

    shared_memory_object(shared_memory_object&&) noexcept = default;
    shared_memory_object& operator=(shared_memory_object&&) noexcept = default;
    shared_memory_object(const shared_memory_object&) = delete;
    shared_memory_object& operator=(const shared_memory_object&) = delete;
    ~shared_memory_object() = default;

    void swap(shared_memory_object& other) noexcept {
        std::swap(h_, other.h_);
        std::swap(mode_, other.mode_);
    }

    /// Set the size (ftruncate, with the memory reserved so a full /dev/shm throws here).
    void truncate(offset_t length) { detail::check(shmb_object_truncate(h_.get(), length)); }

    /// The name, without a leading '/'; "" for an empty handle.
    const char* get_name() const noexcept {
        const char* n = shmb_object_name(h_.get());
        return n ? n : "";
    }

    /// The real size in bytes (fstat). Throws on failure.
    offset_t get_size() const {
        offset_t size = 0;
        detail::check(shmb_object_size(h_.get(), &size));
        return size;
    }

    /// Boost's form: the real size into `size`; false on failure.
    bool get_size(offset_t& size) const noexcept {
        offset_t s = 0;
        if (shmb_object_size(h_.get(), &s) != SHMB_OK) return false;
        size = s;
        return true;
    }

    /// The access the object was opened with.
    mode_t get_mode() const noexcept { return mode_; }

    /// Whether this handle created the object (useful after open_or_create).
    bool created() const noexcept { return shmb_object_created(h_.get()); }

    /// The permission bits (e.g. 0600).
    unsigned get_permissions() const {
        std::uint32_t p = 0;
        detail::check(shmb_object_permissions(h_.get(), &p));
        return p;
    }

    /// Remove the name; processes that have it mapped keep their memory. Never throws: false
    /// when there was nothing to remove or the name is invalid.
    static bool remove(const char* name) noexcept { return shmb_remove(name) == SHMB_OK; }

    /// The C handle (owned by this object).
    shmb_object* native_handle() const noexcept { return h_.get(); }

private:
    shared_memory_object(shmb_open_mode how, const char* name, mode_t mode,
                         const permissions& perm)
        : mode_(mode) {
        shmb_object* raw = nullptr;
        detail::check(shmb_object_open(name, how, static_cast<shmb_access>(mode),
                                       perm.get_permissions(), &raw));
        h_.reset(raw);
    }

    detail::handle<shmb_object, shmb_object_free> h_;
    mode_t mode_ = read_only;
};

/// An open file that can be mapped (Boost's `file_mapping`).
class file_mapping {
public:
    file_mapping() noexcept = default;
    /// Open `filename` for mapping; `mode` read_only, read_write or copy_on_write.
    file_mapping(const char* filename, mode_t mode) : mode_(mode), name_(filename ? filename : "") {
        shmb_file* raw = nullptr;
        detail::check(shmb_file_open(filename, static_cast<shmb_access>(mode), &raw));
        h_.reset(raw);
    }
    file_mapping(file_mapping&&) noexcept = default;
    file_mapping& operator=(file_mapping&&) noexcept = default;
    file_mapping(const file_mapping&) = delete;
    file_mapping& operator=(const file_mapping&) = delete;
    ~file_mapping() = default;

    void swap(file_mapping& other) noexcept {
        std::swap(h_, other.h_);
        std::swap(mode_, other.mode_);
        std::swap(name_, other.name_);
    }

    /// The path given to the constructor.
    const char* get_name() const noexcept { return name_.c_str(); }
    mode_t get_mode() const noexcept { return mode_; }

    /// The file's current size in bytes.
    offset_t get_size() const {
        offset_t size = 0;
        detail::check(shmb_file_size(h_.get(), &size));
        return size;
    }

    /// Delete the file (Boost's file_mapping::remove). Never throws.
    static bool remove(const char* filename) noexcept {
        return filename != nullptr && std::remove(filename) == 0;
    }

    shmb_file* native_handle() const noexcept { return h_.get(); }

private:
    detail::handle<shmb_file, shmb_file_free> h_;
    mode_t mode_ = read_only;
    std::string name_;
};

/// A mapping of a shared_memory_object, a file_mapping or anonymous shared memory (Boost's
/// `mapped_region`). The mapping keeps its object open: it stays valid after the object is
/// destroyed.
class mapped_region {
public:
    mapped_region() noexcept = default;

    /// Map `size` bytes of `shm` at `offset`; size 0 maps from `offset` to the end.
    mapped_region(const shared_memory_object& shm, mode_t mode, offset_t offset = 0,
                  std::size_t size = 0)
        : mode_(mode) {
        shmb_region* raw = nullptr;
        detail::check(shmb_object_map(shm.native_handle(), static_cast<shmb_access>(mode), offset,
                                      size, &raw));
        h_.reset(raw);
    }

    /// Map `size` bytes of the file at `offset`; size 0 maps from `offset` to the end.
    mapped_region(const file_mapping& file, mode_t mode, offset_t offset = 0,
                  std::size_t size = 0)
        : mode_(mode) {
        shmb_region* raw = nullptr;
        detail::check(shmb_file_map(file.native_handle(), static_cast<shmb_access>(mode), offset,
                                    size, &raw));
        h_.reset(raw);
    }

    /// Take ownership of a mapping made through the C ABI.
    explicit mapped_region(shmb_region* owned, mode_t mode) noexcept : h_(owned), mode_(mode) {}

    mapped_region(mapped_region&&) noexcept = default;
    mapped_region& operator=(mapped_region&&) noexcept = default;
    mapped_region(const mapped_region&) = delete;
    mapped_region& operator=(const mapped_region&) = delete;
    ~mapped_region() = default;

    void swap(mapped_region& other) noexcept {
        std::swap(h_, other.h_);
        std::swap(mode_, other.mode_);
    }

    /// The first mapped byte; nullptr for an empty region.
    void* get_address() const noexcept { return shmb_region_data(h_.get()); }
    /// The mapped length in bytes.
    std::size_t get_size() const noexcept { return shmb_region_len(h_.get()); }
    mode_t get_mode() const noexcept { return mode_; }

    /// Write changes of a read-write file mapping back to the file (msync).
    bool flush() noexcept { return shmb_region_flush(h_.get()) == SHMB_OK; }

    /// Throw (SHMB_TRUNCATED) if the object behind the mapping shrank below it.
    void check() const { detail::check(shmb_region_check(h_.get())); }

    /// Bounds-checked copy out of the mapping.
    void read(offset_t offset, void* out, std::size_t len) const {
        detail::check(shmb_region_read(h_.get(), offset, out, len));
    }
    /// Bounds-checked copy into the mapping.
    void write(offset_t offset, const void* data, std::size_t len) const {
        detail::check(shmb_region_write(h_.get(), offset, data, len));
    }

    /// A little-endian field at a byte offset (any alignment): the seed's struct.unpack.
    /// T is one of std::uint8_t ... std::int64_t, float, double.
    template <class T>
    T get(offset_t offset) const;
    /// Write a little-endian field at a byte offset (any alignment): the seed's struct.pack.
    template <class T>
    void set(offset_t offset, T value) const;

    /// The data of a size-prefixed layout (8-byte little-endian length, then the data).
    std::vector<unsigned char> read_prefixed() const {
        std::uint64_t len = 0;
        detail::check(shmb_prefixed_len(h_.get(), &len));
        std::vector<unsigned char> out(static_cast<std::size_t>(len));
        std::size_t n = 0;
        detail::check(shmb_prefixed_read(h_.get(), out.data(), out.size(), &n));
        out.resize(n);
        return out;
    }
    /// Write `data` as a size-prefixed layout.
    void write_prefixed(const void* data, std::size_t len) const {
        detail::check(shmb_prefixed_write(h_.get(), data, len));
    }

    shmb_region* native_handle() const noexcept { return h_.get(); }

private:
    detail::handle<shmb_region, shmb_region_free> h_;
    mode_t mode_ = read_only;
};

#define SHMBRIDGE_HPP_FIELD_(T, suffix)                                               \
    template <>                                                                       \
    inline T mapped_region::get<T>(offset_t offset) const {                           \
        T v{};                                                                        \
        detail::check(shmb_region_get_##suffix(h_.get(), offset, &v));                \
        return v;                                                                     \
    }                                                                                 \
    template <>                                                                       \
    inline void mapped_region::set<T>(offset_t offset, T value) const {               \
        detail::check(shmb_region_set_##suffix(h_.get(), offset, value));             \
    }
SHMBRIDGE_HPP_FIELD_(std::uint8_t, u8)
SHMBRIDGE_HPP_FIELD_(std::int8_t, i8)
SHMBRIDGE_HPP_FIELD_(std::uint16_t, u16)
SHMBRIDGE_HPP_FIELD_(std::int16_t, i16)
SHMBRIDGE_HPP_FIELD_(std::uint32_t, u32)
SHMBRIDGE_HPP_FIELD_(std::int32_t, i32)
SHMBRIDGE_HPP_FIELD_(std::uint64_t, u64)
SHMBRIDGE_HPP_FIELD_(std::int64_t, i64)
SHMBRIDGE_HPP_FIELD_(float, f32)
SHMBRIDGE_HPP_FIELD_(double, f64)
#undef SHMBRIDGE_HPP_FIELD_

/// Anonymous shared memory (Boost's `anonymous_shared_memory`): shared with children made by
/// fork(), zero-filled, read-write.
inline mapped_region anonymous_shared_memory(std::size_t size) {
    shmb_region* raw = nullptr;
    detail::check(shmb_region_anonymous(size, &raw));
    return mapped_region(raw, read_write);
}

/// A snapshot of a framed header.
using header_info = shmb_header_info;

/// A framed segment: shmbridge's validated header, then a payload that writers publish whole
/// and readers copy consistently (checksummed), with waiting for the next publish.
class framed_segment {
public:
    framed_segment() noexcept = default;
    /// Create `name` with room for `capacity` payload bytes.
    framed_segment(create_only_t, const char* name, std::uint64_t capacity,
                   const permissions& perm = permissions()) {
        shmb_framed* raw = nullptr;
        detail::check(shmb_framed_create(name, capacity, perm.get_permissions(), &raw));
        h_.reset(raw);
    }
    /// Open `name` and validate its header (throws SHMB_BAD_MAGIC for a raw segment).
    framed_segment(open_only_t, const char* name, mode_t mode) {
        shmb_framed* raw = nullptr;
        detail::check(shmb_framed_open(name, static_cast<shmb_access>(mode), &raw));
        h_.reset(raw);
    }
    /// As above, waiting (as `w` allows) for the segment to appear if it does not exist yet
    /// (throws SHMB_TIMEOUT if none appeared in time).
    framed_segment(open_only_t, const char* name, mode_t mode, const wait_options& w) {
        shmb_framed* raw = nullptr;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_framed_open_wait(name, static_cast<shmb_access>(mode), &ctx.c, &raw));
        h_.reset(raw);
    }
    framed_segment(framed_segment&&) noexcept = default;
    framed_segment& operator=(framed_segment&&) noexcept = default;
    framed_segment(const framed_segment&) = delete;
    framed_segment& operator=(const framed_segment&) = delete;
    ~framed_segment() = default;

    const char* get_name() const noexcept {
        const char* n = shmb_framed_name(h_.get());
        return n ? n : "";
    }
    std::uint64_t capacity() const noexcept { return shmb_framed_capacity(h_.get()); }
    std::uint64_t payload_len() const noexcept { return shmb_framed_payload_len(h_.get()); }

    header_info header() const {
        header_info h{};
        detail::check(shmb_framed_header(h_.get(), &h));
        return h;
    }

    /// Publish a new payload and wake waiting readers.
    void write(const void* data, std::size_t len) const {
        detail::check(shmb_framed_write(h_.get(), data, len));
    }
    void write(std::string_view text) const { write(text.data(), text.size()); }

    /// Copy the current payload out, consistently, checksum verified.
    std::vector<unsigned char> read() const {
        std::vector<unsigned char> out(static_cast<std::size_t>(payload_len()));
        for (;;) {
            std::size_t n = 0;
            shmb_result r = shmb_framed_read(h_.get(), out.data(), out.size(), &n);
            if (r == SHMB_BUFFER_TOO_SMALL) {  // a bigger payload was published meanwhile
                out.resize(n);
                continue;
            }
            detail::check(r);
            out.resize(n);
            return out;
        }
    }
    std::string read_string() const {
        std::vector<unsigned char> v = read();
        return std::string(v.begin(), v.end());
    }

    /// The publish counter; pass it to wait() to wait for the next publish.
    std::uint32_t publish_count() const noexcept { return shmb_framed_publish_count(h_.get()); }

    /// Wait until a publish after `seen`, as `w` allows (default: without a limit). Throws
    /// SHMB_TIMEOUT, SHMB_WRITER_CLOSED, SHMB_PEER_GONE (the writer is gone), SHMB_ABORTED.
    std::uint32_t wait(std::uint32_t seen, const wait_options& w = {}) const {
        std::uint32_t now = 0;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_framed_wait(h_.get(), seen, &ctx.c, &now));
        return now;
    }

    /// Mark the segment closed by its writer; waiting readers return.
    void close_writer() const { detail::check(shmb_framed_close_writer(h_.get())); }

    static bool remove(const char* name) noexcept { return shmb_remove(name) == SHMB_OK; }

    shmb_framed* native_handle() const noexcept { return h_.get(); }

private:
    detail::handle<shmb_framed, shmb_framed_free> h_;
};

/// One named segment of this machine, as list_segments() reports it.
struct segment_info {
    std::string name;
    std::uint64_t size = 0;
    std::uint32_t uid = 0;
    std::uint32_t mode = 0;
    std::int64_t mtime_ns = 0;
    shmb_detected detected = SHMB_DETECTED_UNFRAMED;
    header_info header{};  // valid when detected == SHMB_DETECTED_FRAMED
};

/// Every named segment on this machine, sorted by name.
inline std::vector<segment_info> list_segments() {
    shmb_list* raw = nullptr;
    detail::check(shmb_list_segments(&raw));
    detail::handle<shmb_list, shmb_list_free> list(raw);
    std::vector<segment_info> out;
    const std::size_t n = shmb_list_len(list.get());
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        shmb_segment_info e{};
        detail::check(shmb_list_get(list.get(), i, &e));
        segment_info s;
        s.name = e.name;
        s.size = e.size;
        s.uid = e.uid;
        s.mode = e.mode;
        s.mtime_ns = e.mtime_ns;
        s.detected = e.detected;
        s.header = e.header;
        out.push_back(std::move(s));
    }
    return out;
}

/// How a file travels.
enum class transfer_mode : shmb_transfer_mode {
    /// One-shot unless a segment_size is given and the file does not fit in it.
    automatic = SHMB_TRANSFER_AUTO,
    /// One framed segment sized to the file; send_file returns once it is published.
    one_shot = SHMB_TRANSFER_ONE_SHOT,
    /// A fixed-size ring; send_file returns once the receiver has verified every byte.
    stream = SHMB_TRANSFER_STREAM,
};

/// Called from the transferring thread after each chunk with the bytes moved so far and the
/// total (SHMB_UNKNOWN_TOTAL if unknown). Throw to stop the transfer: it is abandoned and
/// cleaned up, and send_file / recv_file rethrow the exception.
using progress_fn = std::function<void(std::uint64_t done, std::uint64_t total)>;

/// Options of send_file().
struct send_options {
    transfer_mode mode = transfer_mode::automatic;
    /// Whole segment size, header included; 0: none (streaming then uses 16 MiB).
    std::uint64_t segment_size = 0;
    /// Streaming: how long to wait for the receiver to attach or make progress.
    timeout_t timeout;
    permissions perm;
    progress_fn progress;
};

/// Options of recv_file().
struct recv_options {
    /// How long to wait for the sender (to appear, to publish, and for each piece).
    timeout_t timeout;
    /// Leave a one-shot segment in place after receiving it.
    bool keep = false;
    /// fsync the file and its directory before returning.
    bool fsync = false;
    progress_fn progress;
    /// Whose segments are accepted: SHMB_OWNER_SELF (the default: only this user's own; anyone
    /// can create a segment under the name a receiver waits for), SHMB_OWNER_ANY, or one more
    /// user id. Another owner's segment throws SHMB_PERMISSION_DENIED.
    std::int64_t allow_owner = SHMB_OWNER_SELF;
};

/// What a finished transfer did.
struct transfer_report {
    std::uint64_t bytes = 0;
    std::uint32_t crc32 = 0;
    transfer_mode mode = transfer_mode::one_shot;
    /// Total size of the segment used, header included.
    std::uint64_t segment_size = 0;
    std::chrono::nanoseconds elapsed{0};

    /// Bytes per second over the call.
    double throughput() const noexcept {
        const double s = std::chrono::duration<double>(elapsed).count();
        return static_cast<double>(bytes) / (s > 1e-9 ? s : 1e-9);
    }
};

namespace detail {

inline std::int64_t timeout_ms(const timeout_t& t) noexcept {
    return wait_options(t).timeout_ms();
}

/// The C callback's user data: the std::function, and the exception it threw, if any.
struct progress_ctx {
    const progress_fn* fn = nullptr;
    std::exception_ptr error;
};

/// No exception crosses the C ABI: one thrown by the callback is kept and turned into a stop
/// request, and rethrown once the C call has returned.
inline int progress_trampoline(std::uint64_t done, std::uint64_t total, void* user) noexcept {
    auto* ctx = static_cast<progress_ctx*>(user);
    try {
        (*ctx->fn)(done, total);
        return 0;
    } catch (...) {
        ctx->error = std::current_exception();
        return 1;
    }
}

inline void check_transfer(shmb_result r, const progress_ctx& ctx) {
    if (r == SHMB_ABORTED && ctx.error) std::rethrow_exception(ctx.error);
    check(r);
}

inline transfer_report to_report(const shmb_transfer_report& c) {
    transfer_report r;
    r.bytes = c.bytes;
    r.crc32 = c.crc32;
    r.mode = static_cast<transfer_mode>(c.mode);
    r.segment_size = c.segment_size;
    r.elapsed = std::chrono::nanoseconds(static_cast<std::int64_t>(c.elapsed_ns));
    return r;
}

}  // namespace detail

/// Send the file at `path` through the new segment `name`. One-shot: returns once published
/// (the segment waits for the receiver). Streaming: returns once the receiver has verified
/// every byte. Throws shmbridge::error (SHMB_NOT_FOUND, SHMB_ALREADY_EXISTS, SHMB_TIMEOUT,
/// SHMB_PEER_GONE, ...), or what the progress callback threw.
inline transfer_report send_file(const char* path, const char* name,
                                 const send_options& options = send_options()) {
    shmb_send_options o;
    shmb_send_options_init(&o);
    o.mode = static_cast<shmb_transfer_mode>(options.mode);
    o.segment_size = options.segment_size;
    o.timeout_ms = detail::timeout_ms(options.timeout);
    o.permissions = options.perm.get_permissions();
    detail::progress_ctx ctx;
    if (options.progress) {
        ctx.fn = &options.progress;
        o.progress = &detail::progress_trampoline;
        o.progress_user = &ctx;
    }
    shmb_transfer_report rep{};
    detail::check_transfer(shmb_send_file(path, name, &o, &rep), ctx);
    return detail::to_report(rep);
}
inline transfer_report send_file(const std::string& path, const std::string& name,
                                 const send_options& options = send_options()) {
    return send_file(path.c_str(), name.c_str(), options);
}

/// Receive the file sent through `name` into `path` (written beside it, renamed into place
/// only once the byte count and CRC-32 match; untouched on failure). Throws shmbridge::error
/// (SHMB_TIMEOUT, SHMB_PEER_GONE, SHMB_CHECKSUM_MISMATCH, SHMB_PERMISSION_DENIED, ...), or
/// what the progress callback threw.
inline transfer_report recv_file(const char* name, const char* path,
                                 const recv_options& options = recv_options()) {
    shmb_recv_options o;
    shmb_recv_options_init(&o);
    o.timeout_ms = detail::timeout_ms(options.timeout);
    o.keep = options.keep;
    o.fsync = options.fsync;
    o.allow_owner = options.allow_owner;
    detail::progress_ctx ctx;
    if (options.progress) {
        ctx.fn = &options.progress;
        o.progress = &detail::progress_trampoline;
        o.progress_user = &ctx;
    }
    shmb_transfer_report rep{};
    detail::check_transfer(shmb_recv_file(name, path, &o, &rep), ctx);
    return detail::to_report(rep);
}
inline transfer_report recv_file(const std::string& name, const std::string& path,
                                 const recv_options& options = recv_options()) {
    return recv_file(name.c_str(), path.c_str(), options);
}

/// The writing end of a stream segment (a single-producer single-consumer byte ring). A stream
/// is used once: finish() (once the reader confirmed), abort() and destroying an unfinished
/// writer (which aborts it) remove its name.
class stream_writer {
public:
    stream_writer() noexcept = default;
    /// Create the stream segment `name` with a ring of `capacity` bytes, announcing `total`
    /// bytes when known (then enforced).
    stream_writer(create_only_t, const char* name, std::uint64_t capacity,
                  std::optional<std::uint64_t> total = std::nullopt,
                  const permissions& perm = permissions()) {
        shmb_stream_writer* raw = nullptr;
        detail::check(shmb_stream_writer_create(name, capacity, total ? *total : SHMB_UNKNOWN_TOTAL,
                                                perm.get_permissions(), &raw));
        h_.reset(raw);
    }
    stream_writer(stream_writer&&) noexcept = default;
    stream_writer& operator=(stream_writer&&) noexcept = default;
    stream_writer(const stream_writer&) = delete;
    stream_writer& operator=(const stream_writer&) = delete;
    ~stream_writer() = default;

    /// Copy `len` bytes into the stream, waiting for room as `w` allows (its timeout is an
    /// inactivity limit: it restarts whenever the reader makes room).
    void write(const void* data, std::size_t len, const wait_options& w = {}) {
        detail::wait_ctx ctx(w);
        ctx.check(shmb_stream_writer_write(h_.get(), data, len, &ctx.c));
    }
    void write(std::string_view text, const wait_options& w = {}) {
        write(text.data(), text.size(), w);
    }
    /// End the stream and wait for the reader to verify every byte; returns the CRC-32. After
    /// SHMB_TIMEOUT or SHMB_ABORTED the end stays published and finish() may be called again;
    /// after anything else the writer is done.
    std::uint32_t finish(const wait_options& w = {}) {
        std::uint32_t crc = 0;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_stream_writer_finish(h_.get(), &ctx.c, &crc));
        return crc;
    }
    /// Mark the stream aborted (the reader fails at once) and remove its name.
    void abort() noexcept { shmb_stream_writer_abort(h_.get()); }
    std::uint64_t written() const noexcept { return shmb_stream_writer_written(h_.get()); }
    const char* get_name() const noexcept {
        const char* n = shmb_stream_writer_name(h_.get());
        return n ? n : "";
    }
    static bool remove(const char* name) noexcept { return shmb_remove(name) == SHMB_OK; }
    shmb_stream_writer* native_handle() const noexcept { return h_.get(); }

private:
    detail::handle<shmb_stream_writer, shmb_stream_writer_free> h_;
};

/// The reading end of a stream segment. Destroying it before finish() tells the writer the
/// reader gave up.
class stream_reader {
public:
    stream_reader() noexcept = default;
    /// Attach to the stream `name` as its one reader, waiting as `w` allows for the writer to
    /// create it (default: without a limit; a timeout of 0 does not wait). Throws SHMB_TIMEOUT
    /// when it did not appear, SHMB_ALREADY_EXISTS if another reader took it.
    stream_reader(open_only_t, const char* name, const wait_options& w = {}) {
        shmb_stream_reader* raw = nullptr;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_stream_reader_open(name, &ctx.c, &raw));
        h_.reset(raw);
    }
    /// As above, also accepting a stream owned by `allow_owner` (SHMB_OWNER_ANY, or a user id;
    /// SHMB_OWNER_SELF is the constructor above). Throws SHMB_PERMISSION_DENIED for another
    /// owner's stream.
    stream_reader(open_only_t, const char* name, std::int64_t allow_owner,
                  const wait_options& w = {}) {
        shmb_stream_reader* raw = nullptr;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_stream_reader_open_owner(name, allow_owner, &ctx.c, &raw));
        h_.reset(raw);
    }
    stream_reader(stream_reader&&) noexcept = default;
    stream_reader& operator=(stream_reader&&) noexcept = default;
    stream_reader(const stream_reader&) = delete;
    stream_reader& operator=(const stream_reader&) = delete;
    ~stream_reader() = default;

    /// Copy the next bytes into `buf`, waiting for data as `w` allows (its timeout is an
    /// inactivity limit); 0 at the verified end.
    std::size_t read(void* buf, std::size_t cap, const wait_options& w = {}) {
        std::size_t n = 0;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_stream_reader_read(h_.get(), buf, cap, &ctx.c, &n));
        return n;
    }
    /// Every remaining byte up to the verified end.
    std::vector<unsigned char> read_all(const wait_options& w = {}) {
        std::vector<unsigned char> out;
        std::size_t have = 0;
        for (;;) {
            out.resize(have + (std::size_t{1} << 16));
            const std::size_t n = read(out.data() + have, out.size() - have, w);
            have += n;
            if (n == 0) break;
        }
        out.resize(have);
        return out;
    }
    /// Tell the writer every byte arrived and was verified; returns the CRC-32. Before the
    /// end it throws SHMB_INVALID_ARGUMENT and changes nothing.
    std::uint32_t finish() {
        std::uint32_t crc = 0;
        detail::check(shmb_stream_reader_finish(h_.get(), &crc));
        return crc;
    }
    /// Give up: the writer fails at once.
    void abort() noexcept { shmb_stream_reader_abort(h_.get()); }
    std::uint64_t consumed() const noexcept { return shmb_stream_reader_consumed(h_.get()); }
    /// The announced total, when known.
    std::optional<std::uint64_t> total() const noexcept {
        const std::uint64_t t = shmb_stream_reader_total(h_.get());
        return t == SHMB_UNKNOWN_TOTAL ? std::nullopt : std::optional<std::uint64_t>(t);
    }
    const char* get_name() const noexcept {
        const char* n = shmb_stream_reader_name(h_.get());
        return n ? n : "";
    }
    shmb_stream_reader* native_handle() const noexcept { return h_.get(); }

private:
    detail::handle<shmb_stream_reader, shmb_stream_reader_free> h_;
};

// ---- typed arrays (docs/SPEC.md section 7) -----------------------------------------------

/// A bool element: one byte, 0 is false and anything else true (shared memory may hold any
/// byte, and reading one other than 0 or 1 as C++ `bool` is undefined, so arrays of `bool`
/// itself are refused).
struct bool8 {
    std::uint8_t value = 0;
    constexpr bool8() noexcept = default;
    constexpr bool8(bool b) noexcept : value(b ? 1 : 0) {}  // NOLINT: implicit on purpose
    constexpr operator bool() const noexcept { return value != 0; }  // NOLINT
};

/// An IEEE 754 binary16 element (numpy float16), kept as its bits.
struct float16 {
    std::uint16_t bits = 0;
    static constexpr float16 from_bits(std::uint16_t b) noexcept {
        float16 h;
        h.bits = b;
        return h;
    }
    /// The value as a float (exact).
    float to_float() const noexcept {
        const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
        std::uint32_t exp = (bits >> 10) & 0x1fu, man = bits & 0x3ffu, out;
        if (exp == 0x1f) {
            out = sign | 0x7f800000u | (man << 13);
        } else if (exp != 0) {
            out = sign | ((exp + 112u) << 23) | (man << 13);
        } else if (man == 0) {
            out = sign;
        } else {  // subnormal: normalise
            exp = 113;
            while ((man & 0x400u) == 0) {
                man <<= 1;
                --exp;
            }
            out = sign | (exp << 23) | ((man & 0x3ffu) << 13);
        }
        float f;
        std::memcpy(&f, &out, sizeof f);
        return f;
    }
    /// The nearest binary16 to `f` (ties to even; overflow to infinity).
    static float16 from_float(float f) noexcept {
        std::uint32_t x;
        std::memcpy(&x, &f, sizeof x);
        const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
        const std::uint32_t abs = x & 0x7fffffffu;
        if (abs >= 0x7f800000u)  // inf or nan
            return from_bits(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
        if (abs >= 0x477ff000u) return from_bits(sign | 0x7c00u);  // rounds past 65504
        if (abs < 0x38800000u) {  // subnormal or zero in binary16
            const std::uint32_t shift = 126u - (abs >> 23);
            if (shift > 24) return from_bits(sign);
            const std::uint32_t man = (abs & 0x7fffffu) | 0x800000u;
            std::uint32_t h = man >> shift;
            const std::uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
            if (rem > half || (rem == half && (h & 1u))) ++h;
            return from_bits(static_cast<std::uint16_t>(sign | h));
        }
        std::uint32_t h = ((abs >> 13) - (112u << 10));
        const std::uint32_t rem = abs & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
        return from_bits(static_cast<std::uint16_t>(sign | h));
    }
};

namespace detail {
template <class T>
struct dtype_of {
    static constexpr bool known = false;
    static constexpr shmb_dtype value = 0;
};
#define SHMBRIDGE_DTYPE_OF_(T, CODE)              \
    template <>                                   \
    struct dtype_of<T> {                          \
        static constexpr bool known = true;       \
        static constexpr shmb_dtype value = CODE; \
    }
SHMBRIDGE_DTYPE_OF_(bool8, SHMB_DTYPE_BOOL);
SHMBRIDGE_DTYPE_OF_(std::int8_t, SHMB_DTYPE_INT8);
SHMBRIDGE_DTYPE_OF_(std::int16_t, SHMB_DTYPE_INT16);
SHMBRIDGE_DTYPE_OF_(std::int32_t, SHMB_DTYPE_INT32);
SHMBRIDGE_DTYPE_OF_(std::int64_t, SHMB_DTYPE_INT64);
SHMBRIDGE_DTYPE_OF_(std::uint8_t, SHMB_DTYPE_UINT8);
SHMBRIDGE_DTYPE_OF_(std::uint16_t, SHMB_DTYPE_UINT16);
SHMBRIDGE_DTYPE_OF_(std::uint32_t, SHMB_DTYPE_UINT32);
SHMBRIDGE_DTYPE_OF_(std::uint64_t, SHMB_DTYPE_UINT64);
SHMBRIDGE_DTYPE_OF_(float16, SHMB_DTYPE_FLOAT16);
SHMBRIDGE_DTYPE_OF_(float, SHMB_DTYPE_FLOAT32);
SHMBRIDGE_DTYPE_OF_(double, SHMB_DTYPE_FLOAT64);
SHMBRIDGE_DTYPE_OF_(std::complex<float>, SHMB_DTYPE_COMPLEX64);
SHMBRIDGE_DTYPE_OF_(std::complex<double>, SHMB_DTYPE_COMPLEX128);
#undef SHMBRIDGE_DTYPE_OF_
}  // namespace detail

/// Whether T is an element type of typed arrays.
template <class T>
inline constexpr bool is_array_element_v = detail::dtype_of<std::remove_cv_t<T>>::known;
/// The dtype code (SHMB_DTYPE_*) of element type T.
template <class T>
inline constexpr shmb_dtype dtype_code_v = detail::dtype_of<std::remove_cv_t<T>>::value;

/// The numpy name of a dtype code ("float32", ...), or "unknown".
inline const char* dtype_name(shmb_dtype d) noexcept {
    const char* n = shmb_dtype_name(d);
    return n ? n : "unknown";
}

/// The memory order of a new contiguous array.
enum class array_order : shmb_order {
    /// Row-major: the last index varies fastest (numpy's default).
    c = SHMB_ORDER_C,
    /// Column-major: the first index varies fastest (Fortran, Eigen).
    f = SHMB_ORDER_F,
};

namespace detail {
template <class T>
void check_element() {
    static_assert(!std::is_same_v<std::remove_cv_t<T>, bool>,
                  "shmbridge arrays of bool: use shmbridge::bool8 (a byte, 0 false)");
    static_assert(is_array_element_v<T>,
                  "not an array element type: bool8, the fixed-width integers, float16, float, "
                  "double, std::complex<float> or std::complex<double>");
}

/// Throw (SHMB_INVALID_ARGUMENT) unless the array `a` of `what` holds T elements.
template <class T>
void check_dtype(const shmb_array_info& a, const std::string& what) {
    if (a.dtype != dtype_code_v<T>)
        throw error(SHMB_INVALID_ARGUMENT, 0,
                    what + " holds " + dtype_name(a.dtype) + " elements, not " +
                        dtype_name(dtype_code_v<T>) + " (the element type asked for)");
}

inline std::string quoted(const char* name) { return std::string("\"") + name + "\""; }
}  // namespace detail

/// A typed view of an array where it lies (a segment's mapping, a loaned slot, a received
/// message): shape, byte strides, element access. It borrows: valid as long as what it came
/// from. `T` is const for read-only memory (received messages).
template <class T>
class array_ref {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;

    array_ref() noexcept { std::memset(&info_, 0, sizeof info_); }
    /// A view of `info`, whose dtype must be T's (check it first: detail::check_dtype).
    explicit array_ref(const shmb_array_info& info)
        : info_(info), shape_(info.shape, info.shape + info.ndim),
          strides_(info.strides, info.strides + info.ndim) {
        detail::check_element<T>();
    }

    /// The number of dimensions (0 for one element).
    std::size_t ndim() const noexcept { return info_.ndim; }
    /// The extents.
    const std::vector<std::uint64_t>& shape() const noexcept { return shape_; }
    /// The strides in bytes (negative and zero allowed).
    const std::vector<std::int64_t>& strides() const noexcept { return strides_; }
    /// The number of elements.
    std::size_t size() const noexcept { return static_cast<std::size_t>(info_.len); }
    bool empty() const noexcept { return info_.len == 0; }
    /// Element (0, ..., 0); for a contiguous array, the first of size() elements.
    T* data() const noexcept {
        return reinterpret_cast<T*>(base() + info_.origin);
    }
    /// The data area (data_len() bytes) and its length.
    void* bytes() const noexcept { return info_.data; }
    std::size_t data_len() const noexcept { return info_.data_len; }
    bool is_c_contiguous() const noexcept { return info_.c_contiguous; }
    bool is_f_contiguous() const noexcept { return info_.f_contiguous; }
    const shmb_array_info& info() const noexcept { return info_; }

    /// Element (i0, i1, ...): as many indices as ndim(), each below its extent (unchecked,
    /// as std::mdspan; at() checks).
    template <class... I>
    T& operator()(I... index) const noexcept {
        const std::uint64_t idx[sizeof...(I) + 1] = {static_cast<std::uint64_t>(index)..., 0};
        return *element(idx);
    }
    /// Element `index` (as many indices as ndim()); throws std::out_of_range otherwise.
    T& at(std::initializer_list<std::uint64_t> index) const {
        return at(std::vector<std::uint64_t>(index));
    }
    T& at(const std::vector<std::uint64_t>& index) const {
        if (index.size() != ndim())
            throw std::out_of_range("shmbridge::array_ref::at: " + std::to_string(index.size()) +
                                    " indices for " + std::to_string(ndim()) + " dimensions");
        for (std::size_t d = 0; d < index.size(); ++d)
            if (index[d] >= shape_[d])
                throw std::out_of_range("shmbridge::array_ref::at: index " +
                                        std::to_string(index[d]) + " of dimension " +
                                        std::to_string(d) + " is past its extent " +
                                        std::to_string(shape_[d]));
        return *element(index.data());
    }

    /// The elements in logical (C) order, copied (not a consistent snapshot if a writer is at
    /// work: shared_array::copy() is).
    std::vector<value_type> to_vector() const {
        std::vector<value_type> out;
        out.reserve(size());
        std::vector<std::uint64_t> idx(ndim(), 0);
        for (std::size_t k = 0; k < size(); ++k) {
            out.push_back(*element(idx.data()));
            for (std::size_t d = ndim(); d-- > 0;) {
                if (++idx[d] < shape_[d]) break;
                idx[d] = 0;
            }
        }
        return out;
    }

#if SHMBRIDGE_HAS_SPAN
    /// The elements of a contiguous array in memory order; throws SHMB_UNSUPPORTED otherwise.
    std::span<T> span() const {
        if (!(is_c_contiguous() || is_f_contiguous()))
            throw error(SHMB_UNSUPPORTED, 0, "shmbridge::array_ref::span: not contiguous");
        return {data(), size()};
    }
#endif
#if SHMBRIDGE_HAS_MDSPAN
    /// A std::mdspan over the array (rank R = ndim(), layout_stride). Throws
    /// SHMB_INVALID_ARGUMENT for another rank and SHMB_UNSUPPORTED for a negative stride,
    /// which std::mdspan cannot express.
    template <std::size_t R>
    std::mdspan<T, std::dextents<std::size_t, R>, std::layout_stride> mdspan() const {
        if (R != ndim())
            throw error(SHMB_INVALID_ARGUMENT, 0, "shmbridge::array_ref::mdspan: rank " +
                                                      std::to_string(R) + " for " +
                                                      std::to_string(ndim()) + " dimensions");
        std::array<std::size_t, R> ext{}, str{};
        for (std::size_t d = 0; d < R; ++d) {
            if (strides_[d] < 0)
                throw error(SHMB_UNSUPPORTED, 0,
                            "shmbridge::array_ref::mdspan: negative stride in dimension " +
                                std::to_string(d));
            ext[d] = static_cast<std::size_t>(shape_[d]);
            str[d] = static_cast<std::size_t>(strides_[d]) / sizeof(T);
        }
        using ext_t = std::dextents<std::size_t, R>;
        return {data(), std::layout_stride::mapping<ext_t>(ext_t(ext), str)};
    }
#endif

private:
    using byte_t = std::conditional_t<std::is_const_v<T>, const unsigned char, unsigned char>;
    byte_t* base() const noexcept { return static_cast<byte_t*>(info_.data); }
    T* element(const std::uint64_t* idx) const noexcept {
        std::int64_t off = static_cast<std::int64_t>(info_.origin);
        for (std::size_t d = 0; d < ndim(); ++d)
            off += static_cast<std::int64_t>(idx[d]) * strides_[d];
        return reinterpret_cast<T*>(base() + off);
    }

    shmb_array_info info_;
    std::vector<std::uint64_t> shape_;
    std::vector<std::int64_t> strides_;
};

/// A named array segment of T elements (docs/SPEC.md 7.5): element type and shape fixed when
/// it is created and read from its header when opened (T is checked against it), versions
/// published under the seqlock. Move-only. Destroying it never removes the name (remove()).
template <class T>
class shared_array {
public:
    using value_type = T;

    shared_array() noexcept = default;
    /// Create `name` holding a zeroed array of `shape`, contiguous in `order`. Throws
    /// SHMB_ALREADY_EXISTS, SHMB_INVALID_ARGUMENT (more than 32 dimensions, a size that
    /// overflows), SHMB_NO_SPACE, ...
    shared_array(create_only_t, const char* name, const std::vector<std::uint64_t>& shape,
                 array_order order = array_order::c, permissions perm = permissions()) {
        detail::check_element<T>();
        shmb_array_segment* raw = nullptr;
        detail::check(shmb_array_segment_create(name, dtype_code_v<T>, shape.size(),
                                                shape.data(), nullptr,
                                                static_cast<shmb_order>(order),
                                                perm.get_permissions(), &raw));
        adopt(raw);
    }
    /// Create `name` with general byte `strides` (one per dimension; negative and zero
    /// allowed; multiples of sizeof(T)).
    shared_array(create_only_t, const char* name, const std::vector<std::uint64_t>& shape,
                 const std::vector<std::int64_t>& strides, permissions perm = permissions()) {
        detail::check_element<T>();
        if (strides.size() != shape.size())
            throw error(SHMB_INVALID_ARGUMENT, 0,
                        "array segment " + detail::quoted(name) + ": " +
                            std::to_string(strides.size()) + " strides for " +
                            std::to_string(shape.size()) + " dimensions");
        shmb_array_segment* raw = nullptr;
        detail::check(shmb_array_segment_create(name, dtype_code_v<T>, shape.size(),
                                                shape.data(), strides.data(), SHMB_ORDER_C,
                                                perm.get_permissions(), &raw));
        adopt(raw);
    }
    /// Open `name`, waiting as `w` allows for it to appear; its header's element type must be
    /// T's: otherwise throws shmbridge::error (SHMB_INVALID_ARGUMENT) naming the segment and
    /// both types. Also throws SHMB_TIMEOUT, SHMB_UNSUPPORTED (not an array segment),
    /// SHMB_CORRUPT_HEADER / SHMB_TRUNCATED (a header that does not fit), ...
    shared_array(open_only_t, const char* name, mode_t access = read_only,
                 const wait_options& w = {}) {
        detail::check_element<T>();
        shmb_array_segment* raw = nullptr;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_array_segment_open(name, static_cast<shmb_access>(access), &ctx.c, &raw));
        adopt(raw);
    }
    shared_array(create_only_t, const std::string& name, const std::vector<std::uint64_t>& shape,
                 array_order order = array_order::c, permissions perm = permissions())
        : shared_array(create_only, name.c_str(), shape, order, perm) {}
    shared_array(create_only_t, const std::string& name, const std::vector<std::uint64_t>& shape,
                 const std::vector<std::int64_t>& strides, permissions perm = permissions())
        : shared_array(create_only, name.c_str(), shape, strides, perm) {}
    shared_array(open_only_t, const std::string& name, mode_t access = read_only,
                 const wait_options& w = {})
        : shared_array(open_only, name.c_str(), access, w) {}
    shared_array(shared_array&&) noexcept = default;
    shared_array& operator=(shared_array&&) noexcept = default;
    shared_array(const shared_array&) = delete;
    shared_array& operator=(const shared_array&) = delete;
    ~shared_array() = default;

    /// The array in place (zero-copy: it races the writer; copy() does not).
    const array_ref<T>& view() const noexcept { return view_; }
    std::size_t ndim() const noexcept { return view_.ndim(); }
    const std::vector<std::uint64_t>& shape() const noexcept { return view_.shape(); }
    /// The strides in bytes.
    const std::vector<std::int64_t>& strides() const noexcept { return view_.strides(); }
    std::size_t size() const noexcept { return view_.size(); }
    T* data() const noexcept { return view_.data(); }
    template <class... I>
    T& operator()(I... index) const noexcept {
        return view_(index...);
    }
    T& at(std::initializer_list<std::uint64_t> index) const { return view_.at(index); }
#if SHMBRIDGE_HAS_SPAN
    std::span<T> span() const { return view_.span(); }
#endif

    /// A write in progress (write()): readers' consistent copies wait or retry until it ends.
    /// publish() makes it a new version; destroying it unpublished ends it without waking
    /// anyone (the data written stays).
    class write_scope {
    public:
        write_scope(write_scope&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
        write_scope& operator=(write_scope&&) = delete;
        write_scope(const write_scope&) = delete;
        write_scope& operator=(const write_scope&) = delete;
        ~write_scope() {
            if (h_) (void)shmb_array_segment_end_write(h_, false);
        }
        /// End the write as a new version; waiting readers wake.
        void publish() { detail::check(shmb_array_segment_end_write(std::exchange(h_, nullptr), true)); }

    private:
        friend class shared_array;
        explicit write_scope(shmb_array_segment* h) : h_(h) {
            detail::check(shmb_array_segment_begin_write(h_));
        }
        shmb_array_segment* h_;
    };

    /// Start a write (throws SHMB_PERMISSION_DENIED on a read-only handle, SHMB_TRUNCATED).
    write_scope write() { return write_scope(h_.get()); }
    /// Publish data written in place outside a write as a new version.
    void publish() { detail::check(shmb_array_segment_publish(h_.get())); }
    /// Wait, as `w` allows, for a version this handle has not seen (after its open, its last
    /// copy or wait); returns the publish counter. Throws SHMB_WRITER_CLOSED, SHMB_PEER_GONE,
    /// SHMB_TIMEOUT, SHMB_ABORTED.
    std::uint32_t wait(const wait_options& w = {}) {
        std::uint32_t count = 0;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_array_segment_wait(h_.get(), &ctx.c, &count));
        return count;
    }
    /// A consistent snapshot (never torn) of the elements in logical (C) order; the version
    /// copied in `*version` when given.
    std::vector<std::remove_cv_t<T>> copy(std::uint64_t* version = nullptr) const {
        const shmb_array_info& a = view_.info();
        std::vector<std::remove_cv_t<T>> raw((a.data_len + sizeof(T) - 1) / sizeof(T) + 1);
        std::size_t n = 0;
        std::uint64_t v = 0;
        detail::check(shmb_array_segment_read(h_.get(), raw.data(), raw.size() * sizeof(T), &n, &v));
        if (version) *version = v;
        shmb_array_info local = a;
        local.data = raw.data();
        return array_ref<const T>(local).to_vector();
    }
    /// The number of versions ended so far.
    std::uint64_t version() const noexcept { return shmb_array_segment_version(h_.get()); }
    std::uint32_t publish_count() const noexcept {
        return shmb_array_segment_publish_count(h_.get());
    }
    bool is_writable() const noexcept { return shmb_array_segment_writable(h_.get()); }
    /// Mark the segment closed: readers' waits end with SHMB_WRITER_CLOSED.
    void close_writer() { detail::check(shmb_array_segment_close_writer(h_.get())); }
    const char* get_name() const noexcept {
        const char* n = shmb_array_segment_name(h_.get());
        return n ? n : "";
    }
    static bool remove(const char* name) noexcept { return shmb_remove(name) == SHMB_OK; }
    shmb_array_segment* native_handle() const noexcept { return h_.get(); }

private:
    void adopt(shmb_array_segment* raw) {
        h_.reset(raw);
        shmb_array_info a;
        detail::check(shmb_array_segment_info(raw, &a));
        detail::check_dtype<T>(a, "array segment " + detail::quoted(get_name()));
        view_ = array_ref<T>(a);
    }
    detail::handle<shmb_array_segment, shmb_array_segment_free> h_;
    array_ref<T> view_;
};

// ---- channels (docs/SPEC.md section 8) ---------------------------------------------------

/// What a channel's writer does when readers lag.
enum class channel_policy : shmb_channel_policy {
    /// The writer waits for the slowest live reader: every live reader gets every message.
    block = SHMB_POLICY_BLOCK,
    /// The writer drops the oldest messages; a reader that fell behind learns how many it lost.
    overwrite = SHMB_POLICY_OVERWRITE,
};

namespace detail {
inline shmb_channel_options channel_defaults() noexcept {
    shmb_channel_options c;
    shmb_channel_options_init(&c);
    return c;
}
}  // namespace detail

/// How a channel is made. The defaults are the C ABI's (shmb_channel_options_init()): 16 slots
/// of 4096 bytes, 4 readers, block, no history, no checksums, 0600.
struct channel_options {
    /// Slots (2 to 2^20): how many messages can be in flight at once.
    std::uint32_t slots = detail::channel_defaults().slots;
    /// The largest message, in bytes.
    std::uint64_t max_message = detail::channel_defaults().max_message;
    /// Reader places (1 to 1024).
    std::uint32_t readers = detail::channel_defaults().readers;
    channel_policy policy = static_cast<channel_policy>(detail::channel_defaults().policy);
    /// How many past messages a reader that joins late starts with (less than `slots`).
    std::uint32_t history = detail::channel_defaults().history;
    /// Whether every message carries a CRC-32 that readers check.
    bool checksum = detail::channel_defaults().checksum;
    permissions perm;

    /// As the C ABI takes it.
    shmb_channel_options to_c() const noexcept {
        shmb_channel_options c = detail::channel_defaults();
        c.slots = slots;
        c.max_message = max_message;
        c.readers = readers;
        c.policy = static_cast<shmb_channel_policy>(policy);
        c.history = history;
        c.checksum = checksum;
        c.permissions = perm.get_permissions();
        return c;
    }
};

/// A channel's configuration and state, and one occupied reader place (the C structs).
using channel_info = shmb_channel_info;
using channel_place = shmb_channel_place;

/// A snapshot of a channel: channel_writer::status() and read_channel_status().
struct channel_status {
    channel_info info{};
    std::vector<channel_place> places;
};

namespace detail {
/// Copy a C snapshot out and free it.
inline channel_status take_status(shmb_channel_status* raw) {
    handle<shmb_channel_status, shmb_channel_status_free> st(raw);
    channel_status out;
    check(shmb_channel_status_info(st.get(), &out.info));
    out.places.resize(out.info.places);
    for (std::size_t i = 0; i < out.places.size(); ++i)
        check(shmb_channel_status_place(st.get(), i, &out.places[i]));
    return out;
}
}  // namespace detail

/// A snapshot of the channel `name`, opened read-only without taking a place (for listings).
/// Throws SHMB_NOT_FOUND, SHMB_UNSUPPORTED (not a channel), SHMB_CORRUPT_HEADER, ...
inline channel_status read_channel_status(const char* name) {
    shmb_channel_status* raw = nullptr;
    detail::check(shmb_channel_status_read(name, &raw));
    return detail::take_status(raw);
}

/// A slot loaned by channel_writer::loan(), filled in place: publish() makes it the next
/// message; destroying it unpublished gives the slot back (nobody ever sees it). Move-only.
/// It must not outlive its writer.
class channel_loan {
public:
    channel_loan() noexcept = default;
    channel_loan(channel_loan&& o) noexcept : w_(std::exchange(o.w_, nullptr)), c_(o.c_) {}
    channel_loan& operator=(channel_loan&& o) noexcept {
        if (this != &o) {
            discard();
            w_ = std::exchange(o.w_, nullptr);
            c_ = o.c_;
        }
        return *this;
    }
    channel_loan(const channel_loan&) = delete;
    channel_loan& operator=(const channel_loan&) = delete;
    ~channel_loan() { discard(); }

    /// The slot's message area (capacity() writable bytes); nullptr once published.
    void* data() const noexcept { return w_ ? c_.data : nullptr; }
    unsigned char* bytes() const noexcept { return static_cast<unsigned char*>(data()); }
    /// The bytes asked for.
    std::size_t size() const noexcept { return w_ ? c_.len : 0; }
    /// The bytes that may be written: the channel's max_message.
    std::size_t capacity() const noexcept { return w_ ? c_.capacity : 0; }
    /// Whether the loan is still outstanding.
    explicit operator bool() const noexcept { return w_ != nullptr; }
#if SHMBRIDGE_HAS_SPAN
    /// The bytes asked for, as a span.
    std::span<std::byte> span() const noexcept {
        return {static_cast<std::byte*>(data()), size()};
    }
#endif

    /// Publish the first `n` bytes (at most capacity()) as the next message, with `tag`;
    /// returns its sequence number. On an error (SHMB_OUT_OF_BOUNDS) the loan stays.
    std::uint64_t publish(std::size_t n, std::uint32_t tag = 0) {
        std::uint64_t seq = 0;
        detail::check(shmb_channel_writer_publish(w_, &c_, n, tag, &seq));
        w_ = nullptr;
        return seq;
    }
    /// Publish the size() bytes asked for, with tag 0.
    std::uint64_t publish() { return publish(size()); }
    /// Give the slot back unpublished (also what the destructor does).
    void discard() noexcept {
        if (w_) (void)shmb_channel_writer_discard(std::exchange(w_, nullptr), &c_);
    }
    const shmb_channel_loan& native() const noexcept { return c_; }

private:
    friend class channel_writer;
    channel_loan(shmb_channel_writer* w, const shmb_channel_loan& c) noexcept : w_(w), c_(c) {}
    shmb_channel_writer* w_ = nullptr;
    shmb_channel_loan c_{};
};

/// A slot loaned for an array of T by channel_writer::loan_array(): its header is in the
/// slot already; fill the elements in place (data(), operator(), view()), then publish() it
/// (the message gets SHMB_MESSAGE_ARRAY). Destroying it unpublished gives the slot back.
/// Move-only; it must not outlive its writer.
template <class T>
class channel_array_loan {
public:
    channel_array_loan() noexcept = default;
    channel_array_loan(channel_array_loan&&) noexcept = default;
    channel_array_loan& operator=(channel_array_loan&&) noexcept = default;

    /// The typed array in the slot.
    const array_ref<T>& view() const noexcept { return arr_; }
    const std::vector<std::uint64_t>& shape() const noexcept { return arr_.shape(); }
    /// The strides in bytes.
    const std::vector<std::int64_t>& strides() const noexcept { return arr_.strides(); }
    std::size_t ndim() const noexcept { return arr_.ndim(); }
    /// The number of elements.
    std::size_t size() const noexcept { return arr_.size(); }
    T* data() const noexcept { return arr_.data(); }
    template <class... I>
    T& operator()(I... index) const noexcept {
        return arr_(index...);
    }
    T& at(std::initializer_list<std::uint64_t> index) const { return arr_.at(index); }
#if SHMBRIDGE_HAS_SPAN
    /// The elements in memory order (a loan made from a shape is contiguous).
    std::span<T> span() const { return arr_.span(); }
#endif
    /// Whether the loan is still outstanding.
    explicit operator bool() const noexcept { return static_cast<bool>(loan_); }
    /// Publish the array as the next message, with `tag`; returns its sequence number.
    std::uint64_t publish(std::uint32_t tag = 0) { return loan_.publish(loan_.size(), tag); }
    /// Give the slot back unpublished (also what the destructor does).
    void discard() noexcept { loan_.discard(); }
    /// The byte loan underneath (its data() is the array header's start).
    const channel_loan& loan() const noexcept { return loan_; }

private:
    friend class channel_writer;
    channel_array_loan(channel_loan&& l, const shmb_array_info& a)
        : loan_(std::move(l)), arr_(a) {}
    channel_loan loan_;
    array_ref<T> arr_;
};

/// The writing end of a channel: it creates the segment and is its only writer. Destroying it
/// closes the channel (readers get every message, then the end); the name stays until
/// remove().
class channel_writer {
public:
    channel_writer() noexcept = default;
    /// Create the channel `name` (throws SHMB_ALREADY_EXISTS if taken, SHMB_INVALID_ARGUMENT
    /// for options out of range).
    channel_writer(create_only_t, const char* name, const channel_options& o = channel_options()) {
        shmb_channel_writer* raw = nullptr;
        const shmb_channel_options c = o.to_c();
        detail::check(shmb_channel_writer_create(name, &c, &raw));
        h_.reset(raw);
    }
    channel_writer(create_only_t, const std::string& name,
                   const channel_options& o = channel_options())
        : channel_writer(create_only, name.c_str(), o) {}
    channel_writer(channel_writer&&) noexcept = default;
    channel_writer& operator=(channel_writer&&) noexcept = default;
    channel_writer(const channel_writer&) = delete;
    channel_writer& operator=(const channel_writer&) = delete;
    ~channel_writer() = default;

    /// Loan a slot for a message of up to `n` bytes, waiting for one as `w` allows (under
    /// block, for the slowest live reader). Throws SHMB_OUT_OF_BOUNDS (n > max_message),
    /// SHMB_TIMEOUT (naming the readers that hold it up), SHMB_CLOSED, SHMB_ABORTED.
    channel_loan loan(std::size_t n, const wait_options& w = {}) {
        shmb_channel_loan c{};
        detail::wait_ctx ctx(w);
        ctx.check(shmb_channel_writer_loan(h_.get(), n, &ctx.c, &c));
        return channel_loan(h_.get(), c);
    }
    /// Loan a slot for a C- (or F-) order array of T with `shape`, waiting for one as `w`
    /// allows. Throws SHMB_OUT_OF_BOUNDS (header and data exceed max_message),
    /// SHMB_INVALID_ARGUMENT (more than 32 dimensions), and as loan().
    template <class T>
    channel_array_loan<T> loan_array(const std::vector<std::uint64_t>& shape,
                                     array_order order = array_order::c,
                                     const wait_options& w = {}) {
        return loan_array_impl<T>(shape, nullptr, order, w);
    }
    /// As loan_array(), laid out with general byte `strides` (one per dimension).
    template <class T>
    channel_array_loan<T> loan_array(const std::vector<std::uint64_t>& shape,
                                     const std::vector<std::int64_t>& strides,
                                     const wait_options& w = {}) {
        if (strides.size() != shape.size())
            throw error(SHMB_INVALID_ARGUMENT, 0,
                        "channel " + detail::quoted(get_name()) + ": " +
                            std::to_string(strides.size()) + " strides for " +
                            std::to_string(shape.size()) + " dimensions");
        return loan_array_impl<T>(shape, strides.data(), array_order::c, w);
    }
    /// As loan_array(), without waiting: std::nullopt when no slot is free right now.
    template <class T>
    std::optional<channel_array_loan<T>> try_loan_array(const std::vector<std::uint64_t>& shape,
                                                        array_order order = array_order::c) {
        detail::check_element<T>();
        shmb_channel_loan c{};
        shmb_array_info a;
        bool got = false;
        detail::check(shmb_channel_writer_try_loan_array(h_.get(), dtype_code_v<T>, shape.size(),
                                                         shape.data(), nullptr,
                                                         static_cast<shmb_order>(order), &c, &a,
                                                         &got));
        if (!got) return std::nullopt;
        return channel_array_loan<T>(channel_loan(h_.get(), c), a);
    }
    /// Copy `n` bytes into a slot and publish them with `tag`; returns the sequence number.
    std::uint64_t send(const void* data, std::size_t n, std::uint32_t tag = 0,
                       const wait_options& w = {}) {
        std::uint64_t seq = 0;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_channel_writer_send(h_.get(), data, n, tag, &ctx.c, &seq));
        return seq;
    }
    /// Send the bytes of `text` (not its NUL). A name of its own: with send(), a literal and a
    /// tag (`send("hi", 7)`) would be read as a pointer and a length.
    std::uint64_t send_text(std::string_view text, std::uint32_t tag = 0,
                            const wait_options& w = {}) {
        return send(text.data(), text.size(), tag, w);
    }
    /// Close the channel: readers take what was published, then see the end.
    void close() { detail::check(shmb_channel_writer_close(h_.get())); }

    /// Messages published so far (the next message's sequence number).
    std::uint64_t published() const noexcept { return shmb_channel_writer_published(h_.get()); }
    std::uint64_t max_message() const noexcept {
        return shmb_channel_writer_max_message(h_.get());
    }
    const char* get_name() const noexcept {
        const char* n = shmb_channel_writer_name(h_.get());
        return n ? n : "";
    }
    /// A snapshot: configuration, progress, and each occupied reader place.
    channel_status status() const {
        shmb_channel_status* raw = nullptr;
        detail::check(shmb_channel_writer_status(h_.get(), &raw));
        return detail::take_status(raw);
    }
    static bool remove(const char* name) noexcept { return shmb_remove(name) == SHMB_OK; }
    shmb_channel_writer* native_handle() const noexcept { return h_.get(); }

private:
    template <class T>
    channel_array_loan<T> loan_array_impl(const std::vector<std::uint64_t>& shape,
                                          const std::int64_t* strides, array_order order,
                                          const wait_options& w) {
        detail::check_element<T>();
        shmb_channel_loan c{};
        shmb_array_info a;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_channel_writer_loan_array(h_.get(), dtype_code_v<T>, shape.size(),
                                                 shape.data(), strides,
                                                 static_cast<shmb_order>(order), &ctx.c, &c, &a));
        return channel_array_loan<T>(channel_loan(h_.get(), c), a);
    }
    detail::handle<shmb_channel_writer, shmb_channel_writer_free> h_;
};

/// A message a reader took, read in place where it lies; released (the writer may reuse its
/// slot) when destroyed or release()d. Move-only. It must not outlive its reader.
class channel_message {
public:
    channel_message() noexcept = default;
    channel_message(channel_message&& o) noexcept : r_(std::exchange(o.r_, nullptr)), c_(o.c_) {}
    channel_message& operator=(channel_message&& o) noexcept {
        if (this != &o) {
            release();
            r_ = std::exchange(o.r_, nullptr);
            c_ = o.c_;
        }
        return *this;
    }
    channel_message(const channel_message&) = delete;
    channel_message& operator=(const channel_message&) = delete;
    ~channel_message() { release(); }

    /// Its bytes (read only); nullptr once released.
    const void* data() const noexcept { return r_ ? c_.data : nullptr; }
    const unsigned char* bytes() const noexcept {
        return static_cast<const unsigned char*>(data());
    }
    std::size_t size() const noexcept { return r_ ? c_.len : 0; }
    /// The bytes as text (no copy).
    std::string_view view() const noexcept {
        return {static_cast<const char*>(data()), size()};
    }
#if SHMBRIDGE_HAS_SPAN
    std::span<const std::byte> span() const noexcept {
        return {static_cast<const std::byte*>(data()), size()};
    }
#endif
    /// Its sequence number (0 for the channel's first message).
    std::uint64_t seq() const noexcept { return c_.seq; }
    /// The writer's tag.
    std::uint32_t tag() const noexcept { return c_.tag; }
    /// Message flags (SHMB_MESSAGE_ARRAY).
    std::uint32_t flags() const noexcept { return c_.flags; }
    /// Messages this reader missed just before this one (overwrite policy).
    std::uint64_t lost() const noexcept { return c_.lost; }
    /// When it was published, nanoseconds since the Unix epoch.
    std::uint64_t timestamp_ns() const noexcept { return c_.timestamp_ns; }
    std::chrono::system_clock::time_point timestamp() const noexcept {
        return std::chrono::system_clock::time_point(
            std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::nanoseconds(static_cast<std::int64_t>(c_.timestamp_ns))));
    }
    /// Whether it carries an array header (SHMB_MESSAGE_ARRAY).
    bool has_array() const noexcept { return r_ && (c_.flags & SHMB_MESSAGE_ARRAY) != 0; }
    /// Its array header, checked against its length. Throws SHMB_INVALID_ARGUMENT when it has
    /// none (or was released), SHMB_CORRUPT_HEADER / SHMB_TRUNCATED / SHMB_UNSUPPORTED for a
    /// header that does not fit, naming the channel and the message.
    shmb_array_info array_info() const {
        shmb_array_info a;
        detail::check(shmb_channel_message_array(r_, &c_, &a));
        return a;
    }
    /// The message's array in place, read only, valid while the message is held. Throws as
    /// array_info(), and SHMB_INVALID_ARGUMENT naming both types when it holds other elements.
    template <class T>
    array_ref<const T> array() const {
        detail::check_element<T>();
        const shmb_array_info a = array_info();
        const char* name = shmb_channel_reader_name(r_);
        detail::check_dtype<T>(a, "channel " + detail::quoted(name ? name : "") + " message " +
                                      std::to_string(c_.seq));
        return array_ref<const T>(a);
    }
    /// Whether it still holds the message.
    explicit operator bool() const noexcept { return r_ != nullptr; }
    /// Let go of the message (also what the destructor does); data() is nullptr afterwards.
    void release() noexcept {
        if (r_) (void)shmb_channel_reader_release(std::exchange(r_, nullptr), &c_);
    }
    const shmb_channel_message& native() const noexcept { return c_; }

private:
    friend class channel_reader;
    friend class channel_messages;
    channel_message(shmb_channel_reader* r, const shmb_channel_message& c) noexcept
        : r_(r), c_(c) {}
    shmb_channel_reader* r_ = nullptr;
    shmb_channel_message c_{};
};

/// The messages of a reader until the writer closes the channel, for a range-for:
/// `for (auto& m : reader.messages())`. Each step releases the previous message and waits for
/// the next as the wait_options allow; the end of a closed channel ends the loop, anything
/// else (SHMB_PEER_GONE: the writer died, SHMB_TIMEOUT, ...) throws.
class channel_messages {
public:
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = channel_message;
        using difference_type = std::ptrdiff_t;
        using pointer = channel_message*;
        using reference = channel_message&;

        iterator() noexcept = default;
        reference operator*() noexcept { return msg_; }
        pointer operator->() noexcept { return &msg_; }
        iterator& operator++() {
            next();
            return *this;
        }
        void operator++(int) { next(); }
        bool operator==(const iterator& o) const noexcept { return range_ == o.range_; }
        bool operator!=(const iterator& o) const noexcept { return range_ != o.range_; }

    private:
        friend class channel_messages;
        explicit iterator(const channel_messages* range) : range_(range) { next(); }
        void next() {
            msg_.release();
            shmb_channel_message c{};
            detail::wait_ctx ctx(range_->wait_);
            const shmb_result r = shmb_channel_reader_recv(range_->r_, &ctx.c, &c);
            if (r == SHMB_WRITER_CLOSED) {
                range_ = nullptr;
                return;
            }
            ctx.check(r);
            msg_ = channel_message(range_->r_, c);
        }
        const channel_messages* range_ = nullptr;
        channel_message msg_;
    };

    iterator begin() const { return iterator(this); }
    iterator end() const noexcept { return iterator(); }

private:
    friend class channel_reader;
    channel_messages(shmb_channel_reader* r, wait_options w) : r_(r), wait_(std::move(w)) {}
    shmb_channel_reader* r_;
    wait_options wait_;
};

/// The reading end of a channel: one of its reader places (given back when destroyed, or when
/// the process dies).
class channel_reader {
public:
    channel_reader() noexcept = default;
    /// Open the channel `name` and take a reader place, waiting as `w` allows for the channel
    /// to appear. Throws SHMB_TIMEOUT, SHMB_ALREADY_EXISTS (every place taken),
    /// SHMB_UNSUPPORTED (not a channel), SHMB_CORRUPT_HEADER, ...
    channel_reader(open_only_t, const char* name, const wait_options& w = {}) {
        shmb_channel_reader* raw = nullptr;
        detail::wait_ctx ctx(w);
        ctx.check(shmb_channel_reader_open(name, &ctx.c, &raw));
        h_.reset(raw);
    }
    channel_reader(open_only_t, const std::string& name, const wait_options& w = {})
        : channel_reader(open_only, name.c_str(), w) {}
    channel_reader(channel_reader&&) noexcept = default;
    channel_reader& operator=(channel_reader&&) noexcept = default;
    channel_reader(const channel_reader&) = delete;
    channel_reader& operator=(const channel_reader&) = delete;
    ~channel_reader() = default;

    /// Wait, as `w` allows, for the next message and take it. Throws SHMB_WRITER_CLOSED after
    /// the last message of a closed channel, SHMB_PEER_GONE when the writer died,
    /// SHMB_TIMEOUT, SHMB_ABORTED, SHMB_CHECKSUM_MISMATCH (the message was skipped),
    /// SHMB_CORRUPT_HEADER.
    channel_message recv(const wait_options& w = {}) {
        shmb_channel_message c{};
        detail::wait_ctx ctx(w);
        ctx.check(shmb_channel_reader_recv(h_.get(), &ctx.c, &c));
        return channel_message(h_.get(), c);
    }
    /// Take the next message if one is available, without waiting (std::nullopt when none
    /// is). Throws as recv() (SHMB_WRITER_CLOSED at the end).
    std::optional<channel_message> try_recv() {
        shmb_channel_message c{};
        bool got = false;
        detail::check(shmb_channel_reader_try_recv(h_.get(), &c, &got));
        if (!got) return std::nullopt;
        return channel_message(h_.get(), c);
    }
    /// Wait, as `w` allows, until a message is available or the channel ended, taking nothing.
    void wait_ready(const wait_options& w = {}) {
        detail::wait_ctx ctx(w);
        ctx.check(shmb_channel_reader_wait_ready(h_.get(), &ctx.c));
    }
    /// Every message until the writer closes the channel (see channel_messages).
    channel_messages messages(wait_options w = {}) { return channel_messages(h_.get(), std::move(w)); }

    /// This reader's place (0 to readers - 1).
    std::uint32_t index() const noexcept { return shmb_channel_reader_index(h_.get()); }
    std::uint64_t max_message() const noexcept {
        return shmb_channel_reader_max_message(h_.get());
    }
    channel_policy policy() const noexcept {
        return static_cast<channel_policy>(shmb_channel_reader_policy(h_.get()));
    }
    const char* get_name() const noexcept {
        const char* n = shmb_channel_reader_name(h_.get());
        return n ? n : "";
    }
    shmb_channel_reader* native_handle() const noexcept { return h_.get(); }

private:
    detail::handle<shmb_channel_reader, shmb_channel_reader_free> h_;
};

/// The library's version string (e.g. "0.1.0").
inline const char* version() noexcept { return shmb_version(); }

}  // namespace shmbridge

#endif  // SHMBRIDGE_HPP
