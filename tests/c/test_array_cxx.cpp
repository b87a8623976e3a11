// Tests of the C++ wrapper's typed arrays: shared_array<T> of every element type, C and F
// order, 0-d and empty shapes, written here and opened, checked and copied by a forked process;
// the element type checked at open (an exception naming the segment and both types); write
// scopes, versions and waits; at() bounds; channel loan_array<T>() and message.array<T>()
// across fork, a message without an array, the wrong element type; float16 conversions;
// std::span under C++20; std::mdspan where the library has it.
#define SHMB_TEST_PREFIX "shmb_t_cxar_"
#include "harness.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <complex>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using namespace shmbridge;
using namespace std::chrono_literals;

namespace {

int wait_child(pid_t pid) {
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// Element k (in C order) of a test array.
template <class T>
T value_of(std::uint64_t k) {
    if constexpr (std::is_same_v<T, bool8>) {
        return bool8((k & 1) != 0);
    } else if constexpr (std::is_same_v<T, float16>) {
        return float16::from_float(static_cast<float>(k % 1000) * 0.5f);
    } else if constexpr (std::is_same_v<T, std::complex<float>> ||
                         std::is_same_v<T, std::complex<double>>) {
        using F = typename T::value_type;
        return T(static_cast<F>(k), -static_cast<F>(k) * F(0.25));
    } else if constexpr (std::is_floating_point_v<T>) {
        return static_cast<T>(k) * T(0.5);
    } else {
        return static_cast<T>(k * 31 + 1);
    }
}

template <class T>
bool same(const T& a, const T& b) {
    if constexpr (std::is_same_v<T, bool8>) {
        return static_cast<bool>(a) == static_cast<bool>(b);
    } else if constexpr (std::is_same_v<T, float16>) {
        return a.bits == b.bits;
    } else {
        return a == b;
    }
}

// Fill every element of a view in C order with value_of(k), through at().
template <class T>
void fill(const array_ref<T>& a) {
    std::vector<std::uint64_t> idx(a.ndim(), 0);
    for (std::size_t k = 0; k < a.size(); ++k) {
        a.at(idx) = value_of<std::remove_cv_t<T>>(k);
        for (std::size_t d = a.ndim(); d-- > 0;) {
            if (++idx[d] < a.shape()[d]) break;
            idx[d] = 0;
        }
    }
}

template <class T>
bool holds_values(const std::vector<T>& v) {
    for (std::size_t k = 0; k < v.size(); ++k)
        if (!same(v[k], value_of<T>(k))) return false;
    return true;
}

const std::vector<std::vector<std::uint64_t>> shapes = {{}, {5}, {0, 3}, {2, 3, 4}};

// One element type: every shape, C and F order, written here and read by a forked reader.
template <class T>
void segments_of() {
    const std::string n = name("seg");
    for (const auto& shape : shapes)
        for (array_order order : {array_order::c, array_order::f}) {
            std::uint64_t len = 1;
            for (auto e : shape) len *= e;
            {
                shared_array<T> a(create_only, n, shape, order);
                CHECK(a.ndim() == shape.size() && a.shape() == shape && a.size() == len);
                CHECK(a.is_writable() && a.version() == 0);
                CHECK(std::string(a.get_name()) == n);
                const std::int64_t it = static_cast<std::int64_t>(sizeof(T));
                const std::vector<std::int64_t> c_str{12 * it, 4 * it, it}, f_str{it, 2 * it, 6 * it};
                if (shape.size() == 3) CHECK((order == array_order::c ? c_str : f_str) == a.strides());
                {
                    auto w = a.write();
                    fill(a.view());
                    w.publish();
                }
                CHECK(a.version() == 1 && a.publish_count() == 1);
                const pid_t pid = ::fork();
                if (pid == 0) {
                    int rc = 0;
                    try {
                        shared_array<T> r(open_only, n, read_only, 10s);
                        if (r.shape() != shape || r.strides() != a.strides()) rc = 10;
                        std::uint64_t v = 0;
                        const std::vector<T> c = r.copy(&v);
                        if (!rc && (c.size() != len || !holds_values(c) || v != 1)) rc = 11;
                        if (!rc && !holds_values(r.view().to_vector())) rc = 12;
                        if (!rc && r.is_writable()) rc = 13;
                        if (!rc && len > 0 && shape.size() == 3 && !same(r(1, 2, 3), value_of<T>(23)))
                            rc = 14;
                        if (!rc && shape.empty() && !same(r(), value_of<T>(0))) rc = 15;
                    } catch (const std::exception& e) {
                        std::fprintf(stderr, "reader: %s\n", e.what());
                        rc = 20;
                    }
                    ::_exit(rc);
                }
                const int rc = wait_child(pid);
                if (rc)
                    std::fprintf(stderr, "%s ndim %zu order %d: reader exit %d\n",
                                 dtype_name(dtype_code_v<T>), shape.size(), (int)order, rc);
                CHECK(rc == 0);
            }
            CHECK(shared_array<T>::remove(n.c_str()));
        }
}

void test_every_element_type() {
    segments_of<bool8>();
    segments_of<std::int8_t>();
    segments_of<std::int16_t>();
    segments_of<std::int32_t>();
    segments_of<std::int64_t>();
    segments_of<std::uint8_t>();
    segments_of<std::uint16_t>();
    segments_of<std::uint32_t>();
    segments_of<std::uint64_t>();
    segments_of<float16>();
    segments_of<float>();
    segments_of<double>();
    segments_of<std::complex<float>>();
    segments_of<std::complex<double>>();
}

void test_type_checked_at_open() {
    const std::string n = name("type");
    shared_array<float> a(create_only, n, {4, 4});
    CHECK_THROWS(shared_array<std::int32_t>(open_only, n), SHMB_INVALID_ARGUMENT, 0);
    try {
        shared_array<double> r(open_only, n);
        CHECK(false);
    } catch (const error& e) {
        const std::string what = e.what();
        CHECK(what.find(n) != std::string::npos);
        CHECK(what.find("float32") != std::string::npos && what.find("float64") != std::string::npos);
    }
    shared_array<float> r(open_only, n, read_only, 1s);
    CHECK(r.size() == 16);
    CHECK_THROWS(r.write(), SHMB_PERMISSION_DENIED, -1);
    CHECK_THROWS(r.publish(), SHMB_PERMISSION_DENIED, -1);
    CHECK_THROWS(shared_array<float>(create_only, n, {4, 4}), SHMB_ALREADY_EXISTS, -1);
    CHECK_THROWS(shared_array<float>(open_only, name("missing"), read_only, 0ms), SHMB_TIMEOUT, -1);
    CHECK_THROWS(shared_array<float>(create_only, name("many"), std::vector<std::uint64_t>(33, 1)),
                 SHMB_INVALID_ARGUMENT, -1);
    CHECK_THROWS(shared_array<float>(create_only, name("mis"), {4}, std::vector<std::int64_t>{2}),
                 SHMB_INVALID_ARGUMENT, -1);
    CHECK_THROWS(shared_array<float>(create_only, name("len"), {4}, std::vector<std::int64_t>{}),
                 SHMB_INVALID_ARGUMENT, -1);
    // at() checks the number of indices and each extent.
    bool threw = false;
    try {
        (void)a.at({4, 0});
    } catch (const std::out_of_range& e) {
        threw = std::string(e.what()).find("extent 4") != std::string::npos;
    }
    CHECK(threw);
    threw = false;
    try {
        (void)a.at({1});
    } catch (const std::out_of_range&) {
        threw = true;
    }
    CHECK(threw);
    // A channel under the name of an array.
    const std::string c = name("chan");
    channel_writer w(create_only, c);
    CHECK_THROWS(shared_array<float>(open_only, c), SHMB_UNSUPPORTED, -1);
}

// General strides: a reversed row order (a negative stride) and its consistent copy.
void test_strided_and_versions() {
    const std::string n = name("strided");
    shared_array<std::int32_t> a(create_only, n, {3, 4}, std::vector<std::int64_t>{-16, 4});
    CHECK(a.strides() == (std::vector<std::int64_t>{-16, 4}));
    CHECK(!a.view().is_c_contiguous() && !a.view().is_f_contiguous());
    {
        auto w = a.write();
        fill(a.view());
        w.publish();
    }
    shared_array<std::int32_t> r(open_only, n, read_write);
    CHECK(holds_values(r.copy()));
    CHECK(r(2, 3) == value_of<std::int32_t>(11));
    // The next version, seen by a forked reader; then the writer's close ends its waits.
    int to_kid[2], from_kid[2];
    CHECK(::pipe(to_kid) == 0 && ::pipe(from_kid) == 0);
    char c = 0;
    const pid_t pid = ::fork();
    if (pid == 0) {
        int rc = 0;
        try {
            shared_array<std::int32_t> k(open_only, n, read_only, 10s);
            k.copy();
            if (::write(from_kid[1], "o", 1) != 1) rc = 9;
            k.wait(30s);
            std::uint64_t v = 0;
            const auto got = k.copy(&v);
            if (v != 3 || got[0] != 77) rc = 10;
            if (::write(from_kid[1], "r", 1) != 1) rc = 9;
            try {
                k.wait(30s);
                rc = 11;
            } catch (const error& e) {
                if (e.code() != SHMB_WRITER_CLOSED) rc = 12;
            }
        } catch (const std::exception& e) {
            std::fprintf(stderr, "waiter: %s\n", e.what());
            rc = 20;
        }
        ::_exit(rc);
    }
    CHECK(::read(from_kid[0], &c, 1) == 1);
    {
        auto w = a.write();  // ended unpublished: a version nobody is woken for
    }
    CHECK(a.version() == 2 && a.publish_count() == 1);
    {
        auto w = a.write();
        a(0, 0) = 77;
        w.publish();
    }
    CHECK(::read(from_kid[0], &c, 1) == 1);
    a.close_writer();
    for (int fd : {to_kid[0], to_kid[1], from_kid[0], from_kid[1]}) ::close(fd);
    CHECK(wait_child(pid) == 0);
}

void test_channel_arrays() {
    const std::string n = name("ch");
    channel_options o;
    o.readers = 1;
    o.slots = 4;
    o.max_message = 1 << 16;
    channel_writer w(create_only, n, o);
    const pid_t pid = ::fork();
    if (pid == 0) {
        int rc = 0;
        try {
            channel_reader r(open_only, n, 10s);
            channel_message raw = r.recv(30s);
            if (raw.has_array()) rc = 10;
            try {
                (void)raw.array<std::uint8_t>();
                rc = 11;
            } catch (const error& e) {
                if (e.code() != SHMB_INVALID_ARGUMENT) rc = 12;
            }
            raw.release();
            channel_message m = r.recv(30s);
            auto a = m.array<std::uint16_t>();
            if (!rc && (a.shape() != std::vector<std::uint64_t>{3, 4, 5} || !holds_values(a.to_vector())))
                rc = 13;
            try {
                (void)m.array<float>();
                rc = 14;
            } catch (const error& e) {
                if (e.code() != SHMB_INVALID_ARGUMENT ||
                    std::string(e.what()).find(n) == std::string::npos)
                    rc = 15;
            }
            m.release();
            channel_message f = r.recv(30s);
            auto b = f.array<std::complex<double>>();
            if (!rc && (!b.is_f_contiguous() || b.shape() != std::vector<std::uint64_t>{2, 3} ||
                        !holds_values(b.to_vector())))
                rc = 16;
            f.release();
            channel_message z = r.recv(30s);
            auto s = z.array<double>();
            if (!rc && (s.ndim() != 0 || s.size() != 1 || s() != 2.5)) rc = 17;
            z.release();
            channel_message e = r.recv(30s);
            auto ea = e.array<std::int64_t>();
            if (!rc && (ea.size() != 0 || ea.shape() != std::vector<std::uint64_t>{0, 7})) rc = 18;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "reader: %s\n", e.what());
            rc = 20;
        }
        ::_exit(rc);
    }
    for (int i = 0; i < 30000 && w.status().places.empty(); ++i) ::usleep(1000);
    w.send_text("raw");
    {
        auto l = w.loan_array<std::uint16_t>({3, 4, 5});
        CHECK(l.size() == 60 && l.ndim() == 3);
        fill(l.view());
        CHECK(l(2, 3, 4) == value_of<std::uint16_t>(59));
        l.publish(7);
        CHECK(!l);
    }
    {
        auto l = w.loan_array<std::complex<double>>({2, 3}, array_order::f);
        fill(l.view());
        l.publish();
    }
    {
        auto l = w.try_loan_array<double>({});
        CHECK(l.has_value());
        (*l)() = 2.5;
        l->publish();
    }
    {
        auto discarded = w.loan_array<float>({8});  // destroyed unpublished: nobody sees it
    }
    w.loan_array<std::int64_t>({0, 7}).publish();
    CHECK_THROWS(w.loan_array<std::uint8_t>({1 << 20}), SHMB_OUT_OF_BOUNDS, -1);
    CHECK_THROWS(w.loan_array<std::uint8_t>({4}, std::vector<std::int64_t>{1, 1}),
                 SHMB_INVALID_ARGUMENT, -1);
    w.close();
    CHECK(wait_child(pid) == 0);
}

void test_float16() {
    CHECK(float16::from_float(1.0f).bits == 0x3c00);
    CHECK(float16::from_float(-2.0f).bits == 0xc000);
    CHECK(float16::from_float(65504.0f).bits == 0x7bff);
    CHECK(float16::from_float(1e6f).bits == 0x7c00);
    CHECK(float16::from_float(5.960464477539063e-08f).bits == 0x0001);
    CHECK(float16::from_bits(0x3555).to_float() > 0.333f && float16::from_bits(0x3555).to_float() < 0.334f);
    for (std::uint32_t b = 0; b < 0x7c00; b += 7)
        CHECK(float16::from_float(float16::from_bits(static_cast<std::uint16_t>(b)).to_float()).bits == b);
}

#if SHMBRIDGE_HAS_SPAN
void test_span() {
    const std::string n = name("span");
    shared_array<float> a(create_only, n, {2, 3});
    std::span<float> s = a.span();
    CHECK(s.size() == 6 && s.data() == a.data());
}
#endif

#if SHMBRIDGE_HAS_MDSPAN
void test_mdspan() {
    const std::string n = name("md");
    shared_array<float> a(create_only, n, {2, 3}, array_order::f);
    auto m = a.view().mdspan<2>();
    m[1, 2] = 4.0f;
    CHECK(a(1, 2) == 4.0f);
    CHECK_THROWS(a.view().mdspan<3>(), SHMB_INVALID_ARGUMENT, 0);
}
#endif

}  // namespace

int main() {
    cleanup_at_exit cleanup;
    test_every_element_type();
    test_type_checked_at_open();
    test_strided_and_versions();
    test_channel_arrays();
    test_float16();
#if SHMBRIDGE_HAS_SPAN
    test_span();
#endif
#if SHMBRIDGE_HAS_MDSPAN
    test_mdspan();
#endif
    std::printf("test_array_cxx: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
