/* A tiny test harness for the C ABI tests: checks that count and report, segment names that
 * are unique per process and removed at exit (even when a check fails or a signal arrives). */
#ifndef SHMB_TEST_HARNESS_H
#define SHMB_TEST_HARNESS_H

#include <shmbridge.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int h_checks, h_failures;
static char h_names[64][96];
static int h_nnames;

static const char *h_last_message(void) {
    static char buf[1024];
    size_t n = 0;
    if (shmb_last_error_message(buf, sizeof buf, &n) != SHMB_OK) return "(message too long)";
    return buf;
}

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        h_checks++;                                                                       \
        if (!(cond)) {                                                                    \
            h_failures++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                                 \
    } while (0)

/* `expr` must return `want`; a failure must also leave a readable message and the code as
 * this thread's last error. */
#define CHECK_RC(expr, want)                                                              \
    do {                                                                                  \
        shmb_result rc_ = (expr);                                                         \
        h_checks++;                                                                       \
        if (rc_ != (shmb_result)(want)) {                                                 \
            h_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s returned %u, expected %u; last error: %s\n",       \
                    __FILE__, __LINE__, #expr, (unsigned)rc_, (unsigned)(want),            \
                    h_last_message());                                                    \
        } else if (rc_ != SHMB_OK &&                                                      \
                   (shmb_last_error_code() != rc_ || strlen(h_last_message()) < 10)) {   \
            h_failures++;                                                                 \
            fprintf(stderr, "%s:%d: %s: no readable message for code %u: '%s'\n",         \
                    __FILE__, __LINE__, #expr, (unsigned)rc_, h_last_message());          \
        }                                                                                 \
    } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, SHMB_OK)

/* A wait of `ms` milliseconds (SHMB_TIMEOUT_FOREVER: no limit), without an interrupt. */
#define WAIT_MS(ms) (&(shmb_wait){(ms), NULL, NULL})

static void h_cleanup(void) {
    int i;
    for (i = 0; i < h_nnames; i++) (void)shmb_remove(h_names[i]);
}

static void h_on_signal(int sig) {
    h_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void h_init(void) {
    atexit(h_cleanup);
    signal(SIGSEGV, h_on_signal);
    signal(SIGBUS, h_on_signal);
    signal(SIGABRT, h_on_signal);
    signal(SIGINT, h_on_signal);
    signal(SIGTERM, h_on_signal);
}

/* A fresh segment name shmb_t_<suite>_<pid>_<tag>, removed at exit. */
static const char *h_name(const char *suite, const char *tag) {
    char *slot;
    if (h_nnames >= 64) {
        fprintf(stderr, "too many test names\n");
        exit(2);
    }
    slot = h_names[h_nnames++];
    snprintf(slot, sizeof h_names[0], "shmb_t_%s_%ld_%s", suite, (long)getpid(), tag);
    (void)shmb_remove(slot);
    return slot;
}

static int h_report(const char *suite) {
    printf("%s: %d checks, %d failed\n", suite, h_checks, h_failures);
    return h_failures == 0 ? 0 : 1;
}

#endif
