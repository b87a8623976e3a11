// The C++ tests' small harness: checks that count and report, CHECK_THROWS for
// shmbridge::error with its code and errno, and segment names unique per process that are
// removed at exit. Each test file defines SHMB_TEST_PREFIX (e.g. "shmb_t_cxx_") first.
#ifndef SHMB_TEST_HARNESS_HPP
#define SHMB_TEST_HARNESS_HPP

#include <shmbridge.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#ifndef SHMB_TEST_PREFIX
#error "define SHMB_TEST_PREFIX (the test's segment-name prefix) before including harness.hpp"
#endif

static int checks = 0, failures = 0;
static std::vector<std::string> names;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        ++checks;                                                                    \
        if (!(cond)) {                                                               \
            ++failures;                                                              \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

// `expr` must throw shmbridge::error with `want_code` (and `want_errno` unless it is -1).
#define CHECK_THROWS(expr, want_code, want_errno)                                     \
    do {                                                                             \
        ++checks;                                                                    \
        try {                                                                        \
            (void)(expr);                                                            \
            ++failures;                                                              \
            std::fprintf(stderr, "%s:%d: no exception from %s\n", __FILE__, __LINE__, #expr); \
        } catch (const shmbridge::error& e) {                                        \
            if (e.code() != (want_code) ||                                           \
                ((want_errno) != -1 && e.sys_errno() != (want_errno)) ||             \
                std::strlen(e.what()) < 10) {                                        \
                ++failures;                                                          \
                std::fprintf(stderr, "%s:%d: %s threw code %u errno %d '%s'\n", __FILE__, \
                             __LINE__, #expr, static_cast<unsigned>(e.code()),       \
                             e.sys_errno(), e.what());                               \
            }                                                                        \
        }                                                                            \
    } while (0)

// A segment name unique to this process, removed now and again at exit.
static std::string name(const char* tag) {
    std::string n = SHMB_TEST_PREFIX + std::to_string(static_cast<long>(::getpid())) + "_" + tag;
    shmbridge::shared_memory_object::remove(n.c_str());
    names.push_back(n);
    return n;
}

// Removes every name() at exit (declare one in main()).
struct cleanup_at_exit {
    ~cleanup_at_exit() {
        for (const auto& n : names) shmbridge::shared_memory_object::remove(n.c_str());
    }
};

#endif
