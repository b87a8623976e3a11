// Tests of the C++ wrapper's file transfer and streams: send_file / recv_file (one-shot and
// streamed across fork), failures as shmbridge::error with code and errno, a progress callback
// whose exception stops the transfer and comes back out, the move-only stream_writer /
// stream_reader, and interop with the Rust `shmbridge` command (SHMB_CLI, set by CMake) both
// ways, one-shot and streamed.
#define SHMB_TEST_PREFIX "shmb_t_cxtr_"
#include "harness.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#ifndef SHMB_CLI
#error "SHMB_CLI (the path of the Rust shmbridge command) must be defined by the build"
#endif

using namespace shmbridge;
using std::chrono::milliseconds;

static std::string dir;

static bool shm_exists(const std::string& n) {
    struct stat st;
    return ::stat(("/dev/shm/" + n).c_str(), &st) == 0;
}

static bool exists(const std::string& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0;
}

static std::vector<char> make_data(std::size_t n, unsigned seed) {
    std::vector<char> v(n);
    std::uint32_t x = seed * 2654435761u + 1;
    for (auto& c : v) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return v;
}

static std::string write_file(const char* file, const std::vector<char>& data) {
    std::string p = dir + "/" + file;
    std::ofstream(p, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
    return p;
}

static std::vector<char> read_file(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

static int wait_child(pid_t pid) {
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Run the Rust command with `args` (quiet); returns its exit status.
static int cli(std::vector<std::string> args) {
    pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<char*> argv;
        std::string prog = SHMB_CLI, quiet = "-q";
        argv.push_back(&prog[0]);
        argv.push_back(&quiet[0]);
        for (auto& a : args) argv.push_back(&a[0]);
        argv.push_back(nullptr);
        ::execv(SHMB_CLI, argv.data());
        ::_exit(127);
    }
    return wait_child(pid);
}

// Run the Rust command in the background; wait for it with wait_child().
static pid_t cli_background(std::vector<std::string> args) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(cli(std::move(args)));
    return pid;
}

static_assert(!std::is_copy_constructible_v<stream_writer>, "stream_writer is move-only");
static_assert(!std::is_copy_constructible_v<stream_reader>, "stream_reader is move-only");
static_assert(std::is_nothrow_move_constructible_v<stream_writer>, "noexcept moves");
static_assert(std::is_nothrow_move_assignable_v<stream_reader>, "noexcept moves");

static void test_one_shot() {
    const std::string n = name("one");
    const auto data = make_data(700000, 1);
    const std::string src = write_file("one.bin", data), dst = dir + "/one.out";
    std::uint64_t last = 0;
    int calls = 0;
    send_options so;
    so.mode = transfer_mode::one_shot;
    so.perm = 0640;
    so.progress = [&](std::uint64_t done, std::uint64_t total) {
        ++calls;
        last = done;
        CHECK(total == 700000);
    };
    transfer_report s = send_file(src, n, so);
    CHECK(s.bytes == 700000 && s.mode == transfer_mode::one_shot);
    CHECK(s.segment_size >= 700000 + 128 && s.elapsed.count() > 0 && s.throughput() > 0);
    CHECK(calls >= 2 && last == 700000);
    CHECK(framed_segment(open_only, n.c_str(), read_only).header().checksum == s.crc32);
    recv_options ro;
    ro.timeout = milliseconds(5000);
    ro.keep = true;
    transfer_report r = recv_file(n, dst, ro);
    CHECK(r.bytes == s.bytes && r.crc32 == s.crc32 && r.mode == transfer_mode::one_shot);
    CHECK(r.segment_size == s.segment_size);
    CHECK(read_file(dst) == data);
    CHECK(shm_exists(n));  // keep
    std::remove(dst.c_str());
    r = recv_file(n.c_str(), dst.c_str());  // defaults: removes it
    CHECK(read_file(dst) == data && !shm_exists(n));
    std::remove(dst.c_str());
    std::remove(src.c_str());
}

static void test_stream_fork() {
    const std::string n = name("st");
    const auto data = make_data(3 * 1024 * 1024 + 5, 2);
    const std::string src = write_file("st.bin", data), dst = dir + "/st.out";
    pid_t pid = ::fork();
    if (pid == 0) {
        try {
            send_options so;
            so.mode = transfer_mode::stream;
            so.segment_size = 384 + 100000;
            so.timeout = milliseconds(10000);
            transfer_report s = send_file(src, n, so);
            ::_exit(s.mode == transfer_mode::stream && s.segment_size == 384 + 100000 ? 0 : 11);
        } catch (...) {
            ::_exit(10);
        }
    }
    recv_options ro;
    ro.timeout = milliseconds(10000);
    int calls = 0;
    ro.progress = [&](std::uint64_t done, std::uint64_t total) {
        ++calls;
        // While it waits for the sender the total is not known yet (and nothing is done).
        CHECK(total == data.size() || (total == SHMB_UNKNOWN_TOTAL && done == 0));
    };
    transfer_report r = recv_file(n, dst, ro);
    CHECK(wait_child(pid) == 0);
    CHECK(r.mode == transfer_mode::stream && r.bytes == data.size() && calls >= 3);
    CHECK(read_file(dst) == data && !shm_exists(n));
    std::remove(dst.c_str());
    std::remove(src.c_str());
}

static void test_errors() {
    const std::string n = name("err");
    const std::string src = write_file("err.bin", make_data(100, 3)), dst = dir + "/err.out";
    CHECK_THROWS(send_file("/nonexistent/shmb_t_nothing", n), SHMB_NOT_FOUND, ENOENT);
    CHECK_THROWS(send_file(dir, n), SHMB_INVALID_ARGUMENT, -1);
    CHECK_THROWS(send_file(src, "a/b"), SHMB_INVALID_NAME, -1);
    CHECK_THROWS(send_file(nullptr, n.c_str()), SHMB_NULL_ARGUMENT, 0);
    CHECK_THROWS(recv_file(nullptr, dst.c_str()), SHMB_NULL_ARGUMENT, 0);
    send_file(src, n);
    CHECK_THROWS(send_file(src, n), SHMB_ALREADY_EXISTS, EEXIST);
    recv_options ro;
    ro.timeout = milliseconds(0);
    CHECK_THROWS(recv_file(n, dir, ro), SHMB_INVALID_ARGUMENT, -1);
    CHECK(shared_memory_object::remove(n.c_str()));
    ro.timeout = milliseconds(100);
    CHECK_THROWS(recv_file(n, dst, ro), SHMB_TIMEOUT, -1);
    send_options so;
    so.mode = transfer_mode::stream;
    so.segment_size = 4096;
    so.timeout = milliseconds(100);
    CHECK_THROWS(send_file(src, n, so), SHMB_TIMEOUT, -1);
    CHECK(!shm_exists(n) && !exists(dst));
    std::remove(src.c_str());
}

// An exception thrown by the progress callback stops the transfer and comes out unchanged.
static void test_progress_exception() {
    struct stop : std::runtime_error {
        stop() : std::runtime_error("stop here") {}
    };
    const std::string n = name("pex");
    const auto data = make_data(1 << 20, 4);
    const std::string src = write_file("pex.bin", data), dst = dir + "/pex.out";
    send_options so;
    so.progress = [](std::uint64_t, std::uint64_t) { throw stop(); };
    bool caught = false;
    try {
        send_file(src, n, so);
    } catch (const stop&) {
        caught = true;
    }
    CHECK(caught && !shm_exists(n));
    send_file(src, n);
    recv_options ro;
    ro.progress = [](std::uint64_t done, std::uint64_t) {
        if (done > 0) throw 42;
    };
    caught = false;
    try {
        recv_file(n, dst, ro);
    } catch (int v) {
        caught = v == 42;
    }
    CHECK(caught && !exists(dst) && shm_exists(n));
    recv_file(n, dst);
    CHECK(read_file(dst) == data && !shm_exists(n));
    std::remove(dst.c_str());
    std::remove(src.c_str());
}

static void test_stream_handles() {
    const std::string n = name("sh");
    {
        stream_writer w(create_only, n.c_str(), 4096);
        CHECK(n == w.get_name());
        CHECK_THROWS(stream_writer(create_only, n.c_str(), 4096), SHMB_ALREADY_EXISTS, EEXIST);
        w.write("hello ");
        stream_reader r(open_only, n.c_str());
        CHECK(!r.total().has_value());
        CHECK_THROWS(stream_reader(open_only, n.c_str()), SHMB_ALREADY_EXISTS, -1);
        char buf[32];
        CHECK(r.read(buf, sizeof buf, milliseconds(0)) == 6 && std::memcmp(buf, "hello ", 6) == 0);
        CHECK_THROWS(r.read(buf, sizeof buf, milliseconds(30)), SHMB_TIMEOUT, -1);
        CHECK_THROWS(r.finish(), SHMB_INVALID_ARGUMENT, -1);
        stream_writer moved = std::move(w);  // move-only handles
        CHECK(std::strcmp(w.get_name(), "") == 0 && moved.written() == 6);
        moved.write("world", milliseconds(100));
        stream_reader r2;
        r2 = std::move(r);
        pid_t pid = ::fork();
        if (pid == 0) {  // the writer's finish waits for the reader: run it elsewhere
            try {
                ::_exit(moved.finish(milliseconds(10000)) != 0 ? 0 : 1);
            } catch (...) {
                ::_exit(10);
            }
        }
        std::vector<unsigned char> rest = r2.read_all(milliseconds(10000));
        CHECK(std::string(rest.begin(), rest.end()) == "world" && r2.consumed() == 11);
        CHECK(r2.total() == std::optional<std::uint64_t>(11));
        const std::uint32_t crc = r2.finish();
        CHECK(crc != 0);
        CHECK(wait_child(pid) == 0);
        CHECK_THROWS(r2.finish(), SHMB_CLOSED, -1);
    }
    CHECK(!stream_writer::remove(n.c_str()));  // a finished stream's name is already gone
    {
        stream_writer w(create_only, n.c_str(), 16, std::uint64_t{4});
        stream_reader r(open_only, n.c_str());
        CHECK_THROWS(w.write("12345"), SHMB_INVALID_ARGUMENT, -1);
        w.abort();
        char buf[8];
        CHECK_THROWS(r.read(buf, sizeof buf, milliseconds(1000)), SHMB_PEER_GONE, -1);
        CHECK_THROWS(w.write("1"), SHMB_CLOSED, -1);
    }
    CHECK(!stream_writer::remove(n.c_str()));  // abort removed the name
    {
        // A reader that starts first waits for the stream to appear; an interrupt stops it.
        CHECK_THROWS(stream_reader(open_only, n.c_str(), milliseconds(30)), SHMB_TIMEOUT, -1);
        int calls = 0;
        CHECK_THROWS(stream_reader(open_only, n.c_str(), wait_options(std::nullopt, [&] {
                         return ++calls >= 2;
                     })),
                     SHMB_ABORTED, -1);
        CHECK(calls == 2);
        bool threw = false;
        try {
            stream_reader(open_only, n.c_str(),
                          wait_options(std::nullopt, []() -> bool { throw std::logic_error("mine"); }));
        } catch (const std::logic_error& e) {
            threw = std::string(e.what()) == "mine";
        }
        CHECK(threw);  // the interrupt's own exception comes back, not SHMB_ABORTED
        CHECK_THROWS(stream_reader(open_only, n.c_str(), milliseconds(-1)), SHMB_INVALID_ARGUMENT, -1);
    }
    stream_writer empty;
    CHECK_THROWS(empty.write("x"), SHMB_NULL_ARGUMENT, 0);
}

// The Rust command and this wrapper hand files to each other, one-shot and streamed.
static void test_cli_interop() {
    const auto data = make_data(5 * 1024 * 1024 + 3, 5);
    const std::string src = write_file("cli.bin", data), dst = dir + "/cli.out";
    recv_options ro;
    ro.timeout = milliseconds(20000);

    const std::string a = name("cli_a");  // Rust one-shot -> C++
    CHECK(cli({"send", src, "--name", a}) == 0);
    transfer_report r = recv_file(a, dst, ro);
    CHECK(r.mode == transfer_mode::one_shot && read_file(dst) == data && !shm_exists(a));
    std::remove(dst.c_str());

    const std::string b = name("cli_b");  // Rust stream -> C++
    pid_t pid = cli_background(
        {"send", src, "--name", b, "--stream", "--segment-size", "256K", "--timeout", "20s"});
    r = recv_file(b, dst, ro);
    CHECK(wait_child(pid) == 0);
    CHECK(r.mode == transfer_mode::stream && read_file(dst) == data && !shm_exists(b));
    std::remove(dst.c_str());

    const std::string c = name("cli_c");  // C++ one-shot -> Rust
    send_file(src, c);
    CHECK(cli({"recv", c, dst, "--timeout", "20s"}) == 0);
    CHECK(read_file(dst) == data && !shm_exists(c));
    std::remove(dst.c_str());

    const std::string d = name("cli_d");  // C++ stream -> Rust
    pid = cli_background({"recv", d, dst, "--timeout", "20s"});
    send_options so;
    so.mode = transfer_mode::stream;
    so.segment_size = 384 + 65536;
    so.timeout = milliseconds(20000);
    transfer_report s = send_file(src, d, so);
    CHECK(wait_child(pid) == 0);
    CHECK(s.mode == transfer_mode::stream && read_file(dst) == data && !shm_exists(d));
    std::remove(dst.c_str());
    std::remove(src.c_str());
}

int main() {
    char tmpl[] = "/tmp/shmb_t_cxtr_XXXXXX";
    if (!::mkdtemp(tmpl)) return 2;
    dir = tmpl;
    try {
        test_one_shot();
        test_stream_fork();
        test_errors();
        test_progress_exception();
        test_stream_handles();
        test_cli_interop();
    } catch (const std::exception& e) {
        ++failures;
        std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    }
    for (const auto& n : names) shared_memory_object::remove(n.c_str());
    CHECK(::rmdir(dir.c_str()) == 0);  // nothing left behind in the directory
    std::printf("test_transfer_cxx: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
