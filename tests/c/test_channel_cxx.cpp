// Tests of the C++ wrapper's channels: the move-only RAII channel_writer, channel_loan,
// channel_reader and channel_message over the C ABI; every reader gets every message in order
// under block across fork(); overwrite reports what was lost; iteration until the end; the
// bad inputs (options out of range, too many readers, a message larger than max_message, a
// reader that never releases, a corrupt slot header) as shmbridge::error with the code; readers
// and writers that die; std::span under C++20.
#define SHMB_TEST_PREFIX "shmb_t_cxch_"
#include "harness.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#if __cplusplus >= 202002L
static_assert(SHMBRIDGE_HAS_SPAN, "C++20 builds give spans");
#endif

using namespace shmbridge;
using namespace std::chrono_literals;

namespace {

// Message i (as tests/interop/PROTOCOL.md): length, bytes and tag follow from i.
std::size_t msg_len(std::uint64_t i, std::size_t max) { return 1 + static_cast<std::size_t>((i * 7919) % max); }

void msg_fill(unsigned char* p, std::uint64_t i, std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) p[j] = static_cast<unsigned char>((i * 31 + j) % 256);
}

bool msg_ok(const channel_message& m, std::size_t max) {
    if (m.size() != msg_len(m.seq(), max) || m.tag() != static_cast<std::uint32_t>(m.seq()))
        return false;
    for (std::size_t j = 0; j < m.size(); ++j)
        if (m.bytes()[j] != static_cast<unsigned char>((m.seq() * 31 + j) % 256)) return false;
    return true;
}

std::uint64_t send_msg(channel_writer& w, std::uint64_t i, std::size_t max, const wait_options& wt = {}) {
    const std::size_t n = msg_len(i, max);
    channel_loan l = w.loan(n, wt);
    msg_fill(l.bytes(), i, n);
    return l.publish(n, static_cast<std::uint32_t>(i));
}

channel_options opts(std::uint32_t slots, std::uint32_t readers, channel_policy p, std::uint64_t max) {
    channel_options o;
    o.slots = slots;
    o.readers = readers;
    o.policy = p;
    o.max_message = max;
    return o;
}

int wait_child(pid_t pid) {
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

std::size_t live_readers(const channel_writer& w) {
    std::size_t n = 0;
    for (const auto& p : w.status().places) n += p.active && p.alive;
    return n;
}

bool wait_readers(const channel_writer& w, std::size_t n) {
    for (int i = 0; i < 30000; ++i) {
        if (live_readers(w) >= n) return true;
        ::usleep(1000);
    }
    return false;
}

bool contains(const char* hay, const std::string& needle) { return std::strstr(hay, needle.c_str()) != nullptr; }

void test_types_and_defaults() {
    static_assert(!std::is_copy_constructible<channel_writer>::value, "move-only");
    static_assert(!std::is_copy_constructible<channel_reader>::value, "move-only");
    static_assert(!std::is_copy_constructible<channel_loan>::value, "move-only");
    static_assert(!std::is_copy_constructible<channel_message>::value, "move-only");
    static_assert(std::is_nothrow_move_constructible<channel_loan>::value, "noexcept moves");
    static_assert(std::is_nothrow_move_constructible<channel_message>::value, "noexcept moves");
    static_assert(std::is_nothrow_move_assignable<channel_message>::value, "noexcept moves");
    channel_options o;
    shmb_channel_options c;
    shmb_channel_options_init(&c);
    CHECK(o.slots == c.slots && o.max_message == c.max_message && o.readers == c.readers);
    CHECK(o.policy == channel_policy::block && o.history == 0 && !o.checksum);
    CHECK(o.perm.get_permissions() == SHMB_PERM_DEFAULT);
    // Empty handles: nothing to release or discard, and calls throw instead of crashing.
    channel_loan l;
    channel_message m;
    CHECK(!l && !m && l.data() == nullptr && m.size() == 0);
    l.discard();
    m.release();
    channel_writer w;
    channel_reader r;
    CHECK(std::string(w.get_name()).empty() && std::string(r.get_name()).empty());
    CHECK_THROWS(w.loan(1), SHMB_NULL_ARGUMENT, -1);
    CHECK_THROWS(r.recv(0ms), SHMB_NULL_ARGUMENT, -1);
    CHECK_THROWS(l.publish(1), SHMB_NULL_ARGUMENT, -1);
}

void test_in_process() {
    const std::string n = name("one");
    channel_writer w(create_only, n, opts(4, 2, channel_policy::block, 64));
    CHECK(w.get_name() == n && w.max_message() == 64 && w.published() == 0);
    channel_reader r(open_only, n, 0ms);
    CHECK(r.get_name() == n && r.index() == 0 && r.policy() == channel_policy::block);
    CHECK(r.max_message() == 64);
    CHECK(!r.try_recv());

    {
        channel_loan l = w.loan(5, 0ms);
        CHECK(l && l.size() == 5 && l.capacity() == 64 && l.data() != nullptr);
        std::memcpy(l.data(), "hello", 5);
        CHECK(l.publish(5, 77) == 0);
        CHECK(!l && l.data() == nullptr);  // published: the loan is over
    }
    std::optional<channel_message> m1 = r.try_recv();
    CHECK(m1 && *m1 && m1->seq() == 0 && m1->view() == "hello" && m1->tag() == 77);
    CHECK(m1->lost() == 0 && m1->flags() == 0);
    CHECK(m1->timestamp() > std::chrono::system_clock::time_point(std::chrono::hours(24 * 365 * 50)));
    CHECK(w.send_text("world", 1) == 1);
    {
        channel_message m2 = r.recv(1s);
        CHECK(m2.seq() == 1 && m2.view() == "world");
        channel_message moved = std::move(m2);
        CHECK(!m2 && moved && moved.view() == "world");
    }
    CHECK(m1->view() == "hello");  // still held
    m1->release();
    CHECK(!*m1 && m1->data() == nullptr);
    m1.reset();

    // A loan dropped unpublished gives its slot back; a moved loan keeps it.
    for (int i = 0; i < 10; ++i) {
        channel_loan l = w.loan(8, 0ms);
        std::memset(l.data(), 0xEE, 8);
    }
    {
        channel_loan a = w.loan(64, 0ms);
        channel_loan b = std::move(a);
        CHECK(!a && b && b.size() == 64);
        std::memset(b.data(), 'z', b.capacity());
        CHECK_THROWS(b.publish(65), SHMB_OUT_OF_BOUNDS, -1);
        CHECK(b);  // still outstanding after the failure
        CHECK(b.publish() == 2);
    }
    channel_message m3 = r.recv(0ms);
    CHECK(m3.size() == 64 && m3.bytes()[63] == 'z');
    m3.release();

    // Waits: a timeout, an interrupt that stops, one whose exception comes back out.
    CHECK_THROWS(r.recv(20ms), SHMB_TIMEOUT, -1);
    CHECK_THROWS(r.wait_ready(20ms), SHMB_TIMEOUT, -1);
    CHECK_THROWS(r.recv(wait_options(std::nullopt, [] { return true; })), SHMB_ABORTED, -1);
    bool rethrown = false;
    try {
        r.recv(wait_options(std::nullopt, []() -> bool { throw std::runtime_error("stop here"); }));
    } catch (const std::runtime_error& e) {
        rethrown = std::string(e.what()) == "stop here";
    }
    CHECK(rethrown);

    // The end.
    w.send_text("last", 3);
    w.close();
    w.close();
    CHECK_THROWS(w.loan(1, 0ms), SHMB_CLOSED, -1);
    CHECK_THROWS(w.send_text("x"), SHMB_CLOSED, -1);
    r.wait_ready(0ms);
    CHECK(r.recv(0ms).view() == "last");
    CHECK_THROWS(r.try_recv(), SHMB_WRITER_CLOSED, -1);
    CHECK_THROWS(r.recv(1s), SHMB_WRITER_CLOSED, -1);
    for (auto& m : r.messages()) CHECK(!"no message after the end" && m);
}

void test_iteration_and_span() {
    const std::string n = name("iter");
    const std::size_t max = 700;
    channel_writer w(create_only, n, opts(8, 1, channel_policy::block, max));
    pid_t pid = ::fork();
    if (pid == 0) {
        try {
            channel_reader r(open_only, n, 10s);
            std::uint64_t want = 0;
            for (auto& m : r.messages(30s)) {
                if (m.seq() != want++ || !msg_ok(m, max)) ::_exit(11);
#if SHMBRIDGE_HAS_SPAN
                std::span<const std::byte> s = m.span();
                if (s.size() != m.size() || s.data() != static_cast<const std::byte*>(m.data()))
                    ::_exit(12);
#endif
            }
            ::_exit(want == 2000 ? 0 : 13);
        } catch (...) {
            ::_exit(14);
        }
    }
    CHECK(wait_readers(w, 1));
    for (std::uint64_t i = 0; i < 2000; ++i) {
        if (i % 3 == 0) {
            std::vector<unsigned char> buf(msg_len(i, max));
            msg_fill(buf.data(), i, buf.size());
            CHECK(w.send(buf.data(), buf.size(), static_cast<std::uint32_t>(i), 30s) == i);
        } else {
#if SHMBRIDGE_HAS_SPAN
            const std::size_t len = msg_len(i, max);
            channel_loan l = w.loan(len, 30s);
            std::span<std::byte> s = l.span();
            CHECK(s.size() == len);
            for (std::size_t j = 0; j < len; ++j) s[j] = static_cast<std::byte>((i * 31 + j) % 256);
            CHECK(l.publish(len, static_cast<std::uint32_t>(i)) == i);
#else
            CHECK(send_msg(w, i, max, 30s) == i);
#endif
        }
    }
    w.close();
    CHECK(wait_child(pid) == 0);
}

// Block: two readers in two processes get every message in order.
void test_block_fork() {
    const std::string n = name("blk");
    const std::size_t max = 1000;
    const std::uint64_t count = 3000;
    channel_writer w(create_only, n, opts(4, 3, channel_policy::block, max));
    pid_t kids[2];
    for (auto& k : kids) {
        k = ::fork();
        if (k == 0) {
            try {
                channel_reader r(open_only, n, 10s);
                std::uint64_t want = 0;
                for (;;) {
                    channel_message m = r.recv(30s);
                    if (m.seq() != want || m.lost() != 0 || !msg_ok(m, max)) ::_exit(11);
                    ++want;
                }
            } catch (const error& e) {
                ::_exit(e.code() == SHMB_WRITER_CLOSED ? 0 : 12);
            } catch (...) {
                ::_exit(13);
            }
        }
    }
    CHECK(wait_readers(w, 2));
    for (std::uint64_t i = 0; i < count; ++i) CHECK(send_msg(w, i, max, 30s) == i);
    w.close();
    for (pid_t k : kids) CHECK(wait_child(k) == 0);
}

void test_overwrite() {
    const std::string n = name("ow");
    const std::size_t max = 256;
    channel_writer w(create_only, n, opts(4, 1, channel_policy::overwrite, max));
    channel_reader r(open_only, n, 0ms);
    CHECK(r.policy() == channel_policy::overwrite);
    for (std::uint64_t i = 0; i < 100; ++i) send_msg(w, i, max, 0ms);  // never waits
    std::uint64_t next = 0;
    {
        channel_message first = r.recv(0ms);
        CHECK(first.seq() >= 96 && first.lost() == first.seq() && msg_ok(first, max));
        next = first.seq() + 1;
    }
    while (auto m = r.try_recv()) {
        CHECK(m->seq() == next && m->lost() == 0 && msg_ok(*m, max));
        ++next;
    }
    CHECK(next == 100);
    CHECK(w.status().places.at(0).lost >= 96);
    // A held message survives the writer running far ahead.
    send_msg(w, 100, max, 0ms);
    channel_message held = r.recv(0ms);
    for (std::uint64_t i = 101; i < 300; ++i) send_msg(w, i, max, 0ms);
    CHECK(held.seq() == 100 && msg_ok(held, max));
}

void test_bad_inputs() {
    const std::string n = name("bad");
    CHECK_THROWS(channel_writer(create_only, n, opts(1, 1, channel_policy::block, 16)),
                 SHMB_INVALID_ARGUMENT, 0);
    CHECK_THROWS(channel_writer(create_only, n, opts(4, 0, channel_policy::block, 16)),
                 SHMB_INVALID_ARGUMENT, 0);
    CHECK_THROWS(channel_writer(create_only, n, opts(4, 2000, channel_policy::block, 16)),
                 SHMB_INVALID_ARGUMENT, 0);
    CHECK_THROWS(channel_writer(create_only, n, opts(4, 1, static_cast<channel_policy>(5), 16)),
                 SHMB_INVALID_ARGUMENT, 0);
    channel_options h = opts(4, 1, channel_policy::block, 16);
    h.history = 4;
    CHECK_THROWS(channel_writer(create_only, n, h), SHMB_INVALID_ARGUMENT, 0);
    CHECK_THROWS(channel_reader(open_only, n, 0ms), SHMB_TIMEOUT, -1);

    channel_writer w(create_only, n, opts(2, 2, channel_policy::block, 16));
    CHECK_THROWS(channel_writer(create_only, n, opts(2, 2, channel_policy::block, 16)),
                 SHMB_ALREADY_EXISTS, EEXIST);
    CHECK_THROWS(w.loan(17), SHMB_OUT_OF_BOUNDS, -1);
    CHECK_THROWS(w.send_text(std::string(17, 'x')), SHMB_OUT_OF_BOUNDS, -1);
    channel_reader a(open_only, n, 0ms), b(open_only, n, 0ms);
    try {
        channel_reader c(open_only, n, 0ms);
        CHECK(!"a third reader of two places");
    } catch (const error& e) {
        CHECK(e.code() == SHMB_ALREADY_EXISTS && contains(e.what(), "2 reader places"));
    }
    // A reader that never releases: a timed writer fails, naming it.
    w.send_text("0");
    w.send_text("1");
    channel_message x = a.recv(0ms), y = a.recv(0ms);
    { channel_message bx = b.recv(0ms), by = b.recv(0ms); }  // b takes and releases both
    try {
        w.send_text("2", 0, 100ms);
        CHECK(!"the writer waited past its timeout");
    } catch (const error& e) {
        CHECK(e.code() == SHMB_TIMEOUT);
        CHECK(contains(e.what(), "reader " + std::to_string(a.index()) + " (pid "));
        CHECK(contains(e.what(), "holds 2 message(s)"));
    }
    x.release();
    w.send_text("2", 0, 0ms);

    // Not a channel; a corrupt slot header.
    const std::string other = name("notch");
    framed_segment f(create_only, other.c_str(), 64);
    CHECK_THROWS(channel_reader(open_only, other, 0ms), SHMB_UNSUPPORTED, -1);
    CHECK_THROWS(read_channel_status(other.c_str()), SHMB_UNSUPPORTED, -1);
    {
        shared_memory_object shm(open_only, n.c_str(), read_write);
        mapped_region reg(shm, read_write);
        const auto queue = reg.get<std::uint64_t>(176), slots = reg.get<std::uint64_t>(184);
        const auto slot_size = reg.get<std::uint64_t>(144);
        const std::uint32_t k = reg.get<std::uint32_t>(queue + 16 * (2 % 2) + 8);  // message 2's slot (2 slots)
        reg.set<std::uint64_t>(slots + k * slot_size + 8, 1ull << 40);
        CHECK_THROWS(b.recv(0ms), SHMB_CORRUPT_HEADER, -1);
        reg.set<std::uint64_t>(slots + k * slot_size + 8, 1);
        CHECK(b.recv(0ms).view() == "2");
        reg.set<std::uint32_t>(156, 7);  // an unknown policy
        CHECK_THROWS(channel_reader(open_only, n, 0ms), SHMB_CORRUPT_HEADER, -1);
        reg.set<std::uint32_t>(156, 0);
    }
}

// A reader that dies holding a message never blocks the writer; a writer that dies is
// SHMB_PEER_GONE, one that closes SHMB_WRITER_CLOSED.
void test_deaths() {
    const std::string n = name("dead_r");
    channel_writer w(create_only, n, opts(2, 1, channel_policy::block, 64));
    pid_t pid = ::fork();
    if (pid == 0) {
        try {
            channel_reader r(open_only, n, 10s);
            channel_message m = r.recv(10s);
            ::_exit(m.view() == "first" ? 0 : 11);  // dies holding it
        } catch (...) {
            ::_exit(12);
        }
    }
    CHECK(wait_readers(w, 1));
    w.send_text("first");
    CHECK(wait_child(pid) == 0);
    for (std::uint64_t i = 0; i < 10; ++i) send_msg(w, i + 1, 64, 10s);
    CHECK(w.published() == 11);
    channel_reader fresh(open_only, n, 0ms);  // its place is free
    CHECK(fresh.index() == 0);

    for (int round = 0; round < 2; ++round) {
        const std::string wn = name(round == 0 ? "dead_w" : "closed_w");
        int fds[2];
        if (::pipe(fds) != 0) std::exit(2);
        pid = ::fork();
        if (pid == 0) {
            try {
                channel_writer cw(create_only, wn, opts(4, 1, channel_policy::block, 64));
                char c = 0;
                if (::read(fds[0], &c, 1) != 1) ::_exit(10);
                for (std::uint64_t i = 0; i < 3; ++i) send_msg(cw, i, 64, 10s);
                if (round == 1) cw.close();
                ::_exit(0);  // round 0: dies without closing
            } catch (...) {
                ::_exit(11);
            }
        }
        channel_reader r(open_only, wn, 10s);
        CHECK(::write(fds[1], "g", 1) == 1);
        std::uint64_t got = 0;
        try {
            for (auto& m : r.messages(30s)) CHECK(m.seq() == got++ && msg_ok(m, 64));
            CHECK(round == 1);  // the loop ends only at a closed channel's end
        } catch (const error& e) {
            CHECK(round == 0 && e.code() == SHMB_PEER_GONE && contains(e.what(), "died"));
        }
        CHECK(got == 3);
        CHECK(wait_child(pid) == 0);
        const channel_status st = read_channel_status(wn.c_str());
        CHECK(!st.info.writer_alive && st.info.closed == (round == 1) && st.info.head == 3);
        CHECK(st.places.size() == 1 && st.places[0].pid == static_cast<std::uint32_t>(::getpid()));
        ::close(fds[0]);
        ::close(fds[1]);
    }
}

}  // namespace

int main() {
    cleanup_at_exit cleanup;
    test_types_and_defaults();
    test_in_process();
    test_iteration_and_span();
    test_block_fork();
    test_overwrite();
    test_bad_inputs();
    test_deaths();
    std::printf("test_channel_cxx (C++%ld): %d checks, %d failed\n", __cplusplus / 100 % 100, checks,
                failures);
    return failures == 0 ? 0 : 1;
}
