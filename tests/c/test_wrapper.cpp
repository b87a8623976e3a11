// Tests of the C++ wrapper (shmbridge.hpp): the Boost.Interprocess shapes the seed uses, RAII
// and move-only handles, and every failure as a shmbridge::error carrying the code and errno.
#define SHMB_TEST_PREFIX "shmb_t_cxx_"
#include "harness.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

using namespace shmbridge;

static_assert(!std::is_copy_constructible_v<shared_memory_object>);
static_assert(!std::is_copy_assignable_v<mapped_region>);
static_assert(std::is_nothrow_move_constructible_v<shared_memory_object>);
static_assert(std::is_nothrow_move_assignable_v<mapped_region>);
static_assert(std::is_nothrow_move_constructible_v<file_mapping>);
static_assert(std::is_nothrow_move_constructible_v<framed_segment>);
static_assert(noexcept(shared_memory_object::remove("x")));
static_assert(std::is_base_of_v<std::runtime_error, shmbridge::error>);

// The seed's sender and recver, in one process.
static void test_seed_shapes() {
    const std::string n = name("seed");
    const std::string payload = "the file content, handed over";
    {
        shared_memory_object shm(create_only, n.c_str(), read_write);
        CHECK(std::strcmp(shm.get_name(), n.c_str()) == 0);
        CHECK(shm.get_size() == 0);
        shm.truncate(payload.size());
        offset_t size = 0;
        CHECK(shm.get_size(size) && size == payload.size());
        mapped_region region(shm, read_write);
        CHECK(region.get_size() == payload.size());
        std::memcpy(region.get_address(), payload.data(), payload.size());
        CHECK(shm.get_permissions() == 0600);
        CHECK(shm.get_mode() == read_write);
        CHECK(shm.created());
    }
    {
        shared_memory_object shm(open_only, n.c_str(), read_only);
        mapped_region region(shm, read_only);
        std::string got(static_cast<const char*>(region.get_address()), region.get_size());
        CHECK(got == payload);
        CHECK_THROWS(mapped_region(shm, read_write), SHMB_PERMISSION_DENIED, 0);
        CHECK_THROWS(shm.truncate(1), SHMB_PERMISSION_DENIED, 0);
        // A partial mapping at an unaligned offset.
        mapped_region tail(shm, read_only, 4, 0);
        CHECK(tail.get_size() == payload.size() - 4);
        CHECK(std::memcmp(tail.get_address(), payload.data() + 4, 4) == 0);
    }
    CHECK(shared_memory_object::remove(n.c_str()));
    CHECK(!shared_memory_object::remove(n.c_str()));
}

static void test_errors_carry_code_and_errno() {
    const std::string n = name("err");
    shared_memory_object a(create_only, n.c_str(), read_write);
    CHECK_THROWS(shared_memory_object(create_only, n.c_str(), read_write), SHMB_ALREADY_EXISTS,
                 EEXIST);
    try {
        shared_memory_object again(create_only, n.c_str(), read_write);
    } catch (const shmbridge::error& e) {
        CHECK(std::string(e.what()).find(n) != std::string::npos);
        CHECK(e.get_error_code() == SHMB_ALREADY_EXISTS && e.get_native_error() == EEXIST);
    }
    CHECK_THROWS(mapped_region(a, read_write), SHMB_INVALID_SIZE, 0);  // size 0: truncate first
    shared_memory_object b(open_or_create, n.c_str(), read_write);
    CHECK(!b.created());
    CHECK(shared_memory_object::remove(n.c_str()));
    CHECK_THROWS(shared_memory_object(open_only, n.c_str(), read_only), SHMB_NOT_FOUND, ENOENT);
    CHECK_THROWS(shared_memory_object(open_only, "a/b", read_only), SHMB_INVALID_NAME, 0);
    CHECK_THROWS(shared_memory_object(open_only, "", read_only), SHMB_INVALID_NAME, 0);
    CHECK_THROWS(shared_memory_object(open_only, nullptr, read_only), SHMB_NULL_ARGUMENT, 0);
    CHECK_THROWS(shared_memory_object(create_only, n.c_str(), static_cast<shmbridge::mode_t>(77)),
                 SHMB_INVALID_ARGUMENT, 0);
    CHECK_THROWS(shared_memory_object(create_only, n.c_str(), read_write, permissions(07777)),
                 SHMB_INVALID_ARGUMENT, 0);
    CHECK(!shared_memory_object::remove(n.c_str()));  // no failed constructor left a name
    CHECK(!shared_memory_object::remove(nullptr));
    CHECK(!shared_memory_object::remove("bad/name"));
    CHECK_THROWS(anonymous_shared_memory(0), SHMB_INVALID_SIZE, 0);
    CHECK_THROWS(file_mapping("/nonexistent/shmb_t_none", read_only), SHMB_NOT_FOUND, ENOENT);
    CHECK_THROWS(file_mapping("/tmp", read_only), SHMB_INVALID_ARGUMENT, 0);
    // Operations on empty (default-constructed or moved-from) handles throw, never crash.
    shared_memory_object empty;
    CHECK_THROWS(empty.truncate(10), SHMB_NULL_ARGUMENT, 0);
    CHECK_THROWS(mapped_region(empty, read_only), SHMB_NULL_ARGUMENT, 0);
    CHECK(std::strcmp(empty.get_name(), "") == 0);
    offset_t sz = 7;
    CHECK(!empty.get_size(sz) && sz == 7);
    mapped_region none;
    CHECK(none.get_address() == nullptr && none.get_size() == 0);
    CHECK_THROWS(none.get<std::uint8_t>(0), SHMB_NULL_ARGUMENT, 0);
}

static void test_move_only_raii() {
    const std::string n = name("move");
    shared_memory_object a(create_only, n.c_str(), read_write);
    a.truncate(4096);
    mapped_region r1(a, read_write);
    void* addr = r1.get_address();
    mapped_region r2(std::move(r1));
    CHECK(r2.get_address() == addr && r2.get_size() == 4096);
    CHECK(r1.get_address() == nullptr && r1.get_size() == 0);  // NOLINT: moved-from is empty
    shared_memory_object b(std::move(a));
    CHECK(std::strcmp(b.get_name(), n.c_str()) == 0);
    CHECK(std::strcmp(a.get_name(), "") == 0);  // NOLINT
    mapped_region r3;
    r3 = std::move(r2);
    r3.set<std::uint64_t>(0, 42);
    {
        // The mapping outlives the object it came from.
        shared_memory_object c(open_only, n.c_str(), read_write);
        r2 = mapped_region(c, read_only);
    }
    CHECK(r2.get<std::uint64_t>(0) == 42);
    shared_memory_object s1, s2(open_only, n.c_str(), read_only);
    s1.swap(s2);
    CHECK(std::strcmp(s1.get_name(), n.c_str()) == 0);
    CHECK(shared_memory_object::remove(n.c_str()));
}

// The seed's program1 / program2 fields, little-endian at fixed offsets.
static void test_typed_fields() {
    const std::string n = name("typed");
    shared_memory_object shm(create_only, n.c_str(), read_write);
    shm.truncate(1024);
    mapped_region r(shm, read_write);
    r.set<std::uint8_t>(0, 128);
    r.set<std::int32_t>(4, -1);
    r.set<std::uint32_t>(8, 1);
    r.set<float>(12, 2.0f);
    r.set<double>(17, 3.25);
    const auto* bytes = static_cast<const unsigned char*>(r.get_address());
    CHECK(bytes[0] == 128 && bytes[4] == 0xff && bytes[8] == 1 && bytes[9] == 0);
    shared_memory_object peer(open_only, n.c_str(), read_write);
    mapped_region p(peer, read_write);
    p.set<std::uint8_t>(1, 127);
    p.set<std::int32_t>(4, -128);
    p.set<std::uint32_t>(8, 6666);
    p.set<float>(12, 1.414f);
    CHECK(r.get<std::uint8_t>(1) == 127);
    CHECK(r.get<std::int32_t>(4) == -128);
    CHECK(r.get<std::uint32_t>(8) == 6666);
    CHECK(r.get<float>(12) == 1.414f);
    CHECK(r.get<double>(17) == 3.25);
    CHECK_THROWS(r.get<std::uint32_t>(1022), SHMB_OUT_OF_BOUNDS, 0);
    char buf[4] = {};
    CHECK_THROWS(r.read(1023, buf, 4), SHMB_OUT_OF_BOUNDS, 0);
    // Another process shrinks the segment: an error, not SIGBUS.
    shm.truncate(10);
    CHECK_THROWS(r.get<std::uint8_t>(500), SHMB_TRUNCATED, 0);
    CHECK_THROWS(r.check(), SHMB_TRUNCATED, 0);
    CHECK(shared_memory_object::remove(n.c_str()));
}

static void test_framed() {
    const std::string n = name("framed");
    const std::string raw = name("raw");
    framed_segment w(create_only, n.c_str(), 4096);
    CHECK(w.capacity() == 4096);
    framed_segment r(open_only, n.c_str(), read_only);
    std::uint32_t seen = r.publish_count();
    w.write("hello from C++");
    CHECK(r.wait(seen, std::chrono::milliseconds(1000)) == seen + 1);
    CHECK(r.read_string() == "hello from C++");
    header_info h = r.header();
    CHECK(h.version_major == 1 && h.payload_len == 14 && h.has_checksum);
    CHECK_THROWS(r.write("x"), SHMB_PERMISSION_DENIED, 0);
    CHECK_THROWS(r.wait(r.publish_count(), std::chrono::milliseconds(10)), SHMB_TIMEOUT, 0);
    std::vector<char> big(5000, 'x');
    CHECK_THROWS(w.write(big.data(), big.size()), SHMB_OUT_OF_BOUNDS, 0);
    w.close_writer();
    CHECK_THROWS(r.wait(r.publish_count()), SHMB_WRITER_CLOSED, 0);
    CHECK_THROWS(framed_segment(create_only, n.c_str(), 10), SHMB_ALREADY_EXISTS, EEXIST);
    {
        shared_memory_object s(create_only, raw.c_str(), read_write);
        s.truncate(4096);
    }
    CHECK_THROWS(framed_segment(open_only, raw.c_str(), read_only), SHMB_BAD_MAGIC, 0);
    {
        shared_memory_object s(open_only, n.c_str(), read_write);
        s.truncate(64);
    }
    CHECK_THROWS(framed_segment(open_only, n.c_str(), read_only), SHMB_TRUNCATED, 0);
    CHECK_THROWS(r.read(), SHMB_TRUNCATED, 0);
    bool saw = false;
    for (const segment_info& s : list_segments())
        if (s.name == raw) saw = s.size == 4096 && s.detected == SHMB_DETECTED_UNFRAMED;
    CHECK(saw);
    CHECK(framed_segment::remove(n.c_str()));
    CHECK(shared_memory_object::remove(raw.c_str()));
}

static void test_files_and_anonymous() {
    char dir[] = "/tmp/shmb_t_cxx_XXXXXX";
    CHECK(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/f.bin";
    {
        std::ofstream out(path, std::ios::binary);
        const unsigned char data[] = {3, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'};
        out.write(reinterpret_cast<const char*>(data), sizeof data);
    }
    {
        file_mapping fm(path.c_str(), read_only);
        CHECK(fm.get_size() == 11 && fm.get_name() == path);
        mapped_region region(fm, read_only);
        CHECK(region.get_size() == 11);
        CHECK(region.get<std::uint64_t>(0) == 3);
        std::vector<unsigned char> got = region.read_prefixed();
        CHECK(got.size() == 3 && got[0] == 'a' && got[2] == 'c');
        CHECK_THROWS(mapped_region(fm, read_write), SHMB_PERMISSION_DENIED, 0);
        mapped_region cow(fm, copy_on_write);
        cow.write(8, "X", 1);
        CHECK(static_cast<const char*>(region.get_address())[8] == 'a');
    }
    {
        file_mapping fm(path.c_str(), read_write);
        mapped_region region(fm, read_write);
        region.write_prefixed("xy", 2);
        CHECK(region.flush());
    }
    {
        std::ifstream in(path, std::ios::binary);
        std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        CHECK(all.size() == 11 && all[0] == 2 && all.substr(8, 2) == "xy");
    }
    CHECK(file_mapping::remove(path.c_str()));
    CHECK(!file_mapping::remove(path.c_str()));
    ::rmdir(dir);

    mapped_region anon = anonymous_shared_memory(100);
    CHECK(anon.get_size() == 100);
    pid_t pid = ::fork();
    if (pid == 0) {
        std::memset(anon.get_address(), 'a', 100);
        ::_exit(0);
    }
    int status = 0;
    CHECK(::waitpid(pid, &status, 0) == pid && WIFEXITED(status));
    CHECK(static_cast<const char*>(anon.get_address())[99] == 'a');
}

// Hostile segments (issue 10): a FIFO or a 10-byte segment under the name fails at once, a
// read of a segment shrunk to nothing throws SHMB_TRUNCATED, another user's segment is
// refused unless allow_owner says otherwise.
static void test_hostile() {
    const std::string fifo = name("fifo");
    const std::string shorty = name("short");
    const std::string big = name("big");
    CHECK(::mkfifo(("/dev/shm/" + fifo).c_str(), 0600) == 0);
    CHECK_THROWS(framed_segment(open_only, fifo.c_str(), read_only), SHMB_INVALID_ARGUMENT, 0);
    CHECK_THROWS(framed_segment(open_only, fifo.c_str(), read_only,
                                wait_options(std::chrono::hours(1))),
                 SHMB_INVALID_ARGUMENT, 0);
    CHECK_THROWS(shared_memory_object(open_only, fifo.c_str(), read_only), SHMB_INVALID_ARGUMENT,
                 0);
    {
        std::ofstream f("/dev/shm/" + shorty, std::ios::binary);
        f.write("SHMBRIDG\x01\x00", 10);
    }
    CHECK_THROWS(framed_segment(open_only, shorty.c_str(), read_only,
                                wait_options(std::chrono::hours(1))),
                 SHMB_BAD_MAGIC, 0);
    {
        shared_memory_object s(create_only, big.c_str(), read_write);
        s.truncate(1 << 20);
        mapped_region r(s, read_only);
        s.truncate(0);
        std::vector<char> buf(1 << 20);
        CHECK_THROWS(r.read(0, buf.data(), buf.size()), SHMB_TRUNCATED, 0);
    }
    {
        // The SIGBUS guard: get_address() past a shrunk end reads 0 instead of killing the
        // process, and check() then throws SHMB_TRUNCATED.
        const std::string g = name("guard");
        shared_memory_object s(create_only, g.c_str(), read_write);
        s.truncate(1 << 20);
        mapped_region r(s, read_write);
        auto *p = static_cast<volatile unsigned char *>(r.get_address());
        p[600000] = 'd';
        r.check();
        s.truncate(8192);
        CHECK(p[600000] == 0);
        CHECK_THROWS(r.check(), SHMB_TRUNCATED, 0);
    }
    if (::geteuid() == 0) {
        const std::string owned = name("owned");
        const std::string src = "/tmp/" + owned + ".src";
        const std::string out = "/tmp/" + owned + ".out";
        {
            std::ofstream f(src, std::ios::binary);
            f << "nobody's bytes";
        }
        send_file(src.c_str(), owned.c_str());
        CHECK(::chown(("/dev/shm/" + owned).c_str(), 65534, 65534) == 0);
        CHECK_THROWS(recv_file(owned.c_str(), out.c_str()), SHMB_PERMISSION_DENIED, 0);
        recv_options o;
        o.allow_owner = 65534;
        CHECK(recv_file(owned.c_str(), out.c_str(), o).bytes == 14);
        std::remove(src.c_str());
        std::remove(out.c_str());
    }
}

int main() {
    cleanup_at_exit cleanup;
    try {
        test_seed_shapes();
        test_errors_carry_code_and_errno();
        test_move_only_raii();
        test_typed_fields();
        test_framed();
        test_files_and_anonymous();
        test_hostile();
    } catch (const std::exception& e) {
        ++failures;
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    }
    std::printf("test_wrapper: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
