/* Tests of the C ABI's channels (docs/SPEC.md section 8): one writer, many readers, messages
 * loaned and read in place. Every reader gets every message in order under block, across
 * fork(); overwrite reports what a reader lost and never tears a message; every NULL
 * argument; every bad input (options out of range, a message larger than max_message, too
 * many readers, loans never published, a reader that never releases, corrupt queue, slot
 * headers, cursors and layouts); readers and writers that die (exit holding, SIGKILL at random
 * moments): a dead reader never blocks the writer, a dead writer is SHMB_PEER_GONE and a
 * closed channel SHMB_WRITER_CLOSED. Compiled with -Wall -Wextra -Wpedantic -Werror. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define SUITE "ch"

/* Message i of the tests (as tests/interop/PROTOCOL.md): its length, bytes and tag follow
 * from its sequence number, so a reader checks any message alone. */
static size_t msg_len(uint64_t i, size_t max) { return 1 + (size_t)((i * 7919) % max); }

static void msg_fill(unsigned char *p, uint64_t i, size_t n) {
    size_t j;
    for (j = 0; j < n; j++) p[j] = (unsigned char)((i * 31 + j) % 256);
}

/* Whether `m` is message m->seq, whole. */
static int msg_ok(const shmb_channel_message *m, size_t max) {
    const unsigned char *p = m->data;
    size_t j;
    if (m->len != msg_len(m->seq, max) || m->tag != (uint32_t)m->seq) return 0;
    for (j = 0; j < m->len; j++)
        if (p[j] != (unsigned char)((m->seq * 31 + j) % 256)) return 0;
    return 1;
}

/* Send message i through a loan filled in place. */
static shmb_result send_msg(shmb_channel_writer *w, uint64_t i, size_t max, const shmb_wait *wait) {
    shmb_channel_loan loan;
    size_t n = msg_len(i, max);
    uint64_t seq = 0;
    shmb_result r = shmb_channel_writer_loan(w, n, wait, &loan);
    if (r != SHMB_OK) return r;
    msg_fill(loan.data, i, n);
    r = shmb_channel_writer_publish(w, &loan, n, (uint32_t)i, &seq);
    if (r == SHMB_OK && seq != i) return SHMB_PANIC;
    return r;
}

static shmb_channel_options opts(uint32_t slots, uint32_t readers, shmb_channel_policy policy,
                                 uint64_t max) {
    shmb_channel_options o;
    shmb_channel_options_init(&o);
    o.slots = slots;
    o.readers = readers;
    o.policy = policy;
    o.max_message = max;
    return o;
}

static int shm_exists(const char *name) {
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "/dev/shm/%s", name);
    return stat(p, &st) == 0;
}

static int wait_child(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void sleep_us(long us) {
    struct timespec ts;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    nanosleep(&ts, NULL);
}

/* The number of live readers that hold a place, from the writer's snapshot. */
static size_t live_readers(const shmb_channel_writer *w) {
    shmb_channel_status *st = NULL;
    shmb_channel_info info;
    shmb_channel_place p;
    size_t i, n = 0;
    if (shmb_channel_writer_status(w, &st) != SHMB_OK) return 0;
    if (shmb_channel_status_info(st, &info) == SHMB_OK)
        for (i = 0; i < info.places; i++)
            if (shmb_channel_status_place(st, i, &p) == SHMB_OK && p.active && p.alive) n++;
    shmb_channel_status_free(st);
    return n;
}

/* Wait (30 s at most, so a broken test cannot hang) until `n` live readers hold a place. */
static int wait_readers(const shmb_channel_writer *w, size_t n) {
    int i;
    for (i = 0; i < 30000; i++) {
        if (live_readers(w) >= n) return 1;
        sleep_us(1000);
    }
    return 0;
}

static void close_pipes(int a[2], int b[2]) {
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}

static int stop_now(void *user) {
    (*(int *)user)++;
    return 1;
}

static void test_defaults(void) {
    shmb_channel_options o;
    memset(&o, 0xAB, sizeof o);
    shmb_channel_options_init(&o);
    CHECK(o.slots == 16 && o.max_message == 4096 && o.readers == 4);
    CHECK(o.policy == SHMB_POLICY_BLOCK && o.history == 0 && !o.checksum);
    CHECK(o.permissions == SHMB_PERM_DEFAULT);
    shmb_channel_options_init(NULL);
}

static void test_null_arguments(void) {
    const char *name = h_name(SUITE, "null");
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL;
    shmb_channel_status *st = NULL;
    shmb_channel_loan loan;
    shmb_channel_message msg;
    shmb_channel_info info;
    shmb_channel_place place;
    bool got = false;
    uint64_t seq = 0;

    memset(&loan, 0, sizeof loan);
    memset(&msg, 0, sizeof msg);
    CHECK_RC(shmb_channel_writer_create(NULL, NULL, &w), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_create(name, NULL, NULL), SHMB_NULL_ARGUMENT);
    CHECK(!shm_exists(name));
    CHECK_RC(shmb_channel_writer_loan(NULL, 1, WAIT_MS(0), &loan), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_publish(NULL, &loan, 1, 0, &seq), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_discard(NULL, &loan), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_send(NULL, "x", 1, 0, WAIT_MS(0), &seq), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_close(NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_status(NULL, &st), SHMB_NULL_ARGUMENT);
    CHECK(shmb_channel_writer_published(NULL) == 0);
    CHECK(shmb_channel_writer_max_message(NULL) == 0);
    CHECK(shmb_channel_writer_name(NULL) == NULL);
    shmb_channel_writer_free(NULL);
    CHECK_RC(shmb_channel_reader_open(NULL, WAIT_MS(0), &r), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_open(name, WAIT_MS(0), NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_try_recv(NULL, &msg, &got), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_recv(NULL, WAIT_MS(0), &msg), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_wait_ready(NULL, WAIT_MS(0)), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_release(NULL, &msg), SHMB_NULL_ARGUMENT);
    CHECK(shmb_channel_reader_index(NULL) == UINT32_MAX);
    CHECK(shmb_channel_reader_max_message(NULL) == 0);
    CHECK(shmb_channel_reader_policy(NULL) == UINT32_MAX);
    CHECK(shmb_channel_reader_name(NULL) == NULL);
    shmb_channel_reader_free(NULL);
    CHECK_RC(shmb_channel_status_read(NULL, &st), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_status_read(name, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_status_info(NULL, &info), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_status_place(NULL, 0, &place), SHMB_NULL_ARGUMENT);
    shmb_channel_status_free(NULL);

    /* NULL options are the defaults; NULL out_seq is not wanted. */
    CHECK_OK(shmb_channel_writer_create(name, NULL, &w));
    CHECK(shmb_channel_writer_max_message(w) == 4096);
    CHECK_RC(shmb_channel_writer_loan(w, 1, WAIT_MS(0), NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_publish(w, NULL, 1, 0, &seq), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_discard(w, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_send(w, NULL, 1, 0, WAIT_MS(0), &seq), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_status(w, NULL), SHMB_NULL_ARGUMENT);
    CHECK(shmb_channel_writer_published(w) == 0); /* nothing was published by the failures */
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
    CHECK_OK(shmb_channel_writer_send(w, NULL, 0, 5, WAIT_MS(0), NULL)); /* an empty message */
    CHECK_RC(shmb_channel_reader_try_recv(r, NULL, &got), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_try_recv(r, &msg, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_recv(r, WAIT_MS(0), NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_reader_release(r, NULL), SHMB_NULL_ARGUMENT);
    /* The failed calls took nothing: the empty message is still there. */
    CHECK_OK(shmb_channel_reader_recv(r, WAIT_MS(0), &msg));
    CHECK(msg.seq == 0 && msg.len == 0 && msg.tag == 5 && msg.data != NULL);
    CHECK_OK(shmb_channel_reader_release(r, &msg));
    CHECK_OK(shmb_channel_status_read(name, &st));
    CHECK_RC(shmb_channel_status_info(st, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_status_place(st, 0, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_status_place(st, 5, &place), SHMB_OUT_OF_BOUNDS);
    shmb_channel_status_free(st);
    shmb_channel_reader_free(r);
    shmb_channel_writer_free(w);
    CHECK(shm_exists(name)); /* freeing never removes the name */
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* One process: loans, publish, the message's fields, holds, waits, the end. */
static void test_in_process(void) {
    const char *name = h_name(SUITE, "one");
    shmb_channel_options o = opts(4, 2, SHMB_POLICY_BLOCK, 64);
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL;
    shmb_channel_loan loan;
    shmb_channel_message m1, m2;
    shmb_wait stop;
    bool got = true;
    uint64_t seq = 99;
    int calls = 0;

    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    CHECK(strcmp(shmb_channel_writer_name(w), name) == 0);
    CHECK(shmb_channel_writer_max_message(w) == 64 && shmb_channel_writer_published(w) == 0);
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
    CHECK(strcmp(shmb_channel_reader_name(r), name) == 0);
    CHECK(shmb_channel_reader_index(r) == 0);
    CHECK(shmb_channel_reader_policy(r) == SHMB_POLICY_BLOCK);
    CHECK(shmb_channel_reader_max_message(r) == 64);

    /* Nothing yet: not an error, and the message is left alone. */
    memset(&m1, 0x5A, sizeof m1);
    CHECK_OK(shmb_channel_reader_try_recv(r, &m1, &got));
    CHECK(!got && m1.seq == 0x5A5A5A5A5A5A5A5Aull);

    CHECK_OK(shmb_channel_writer_loan(w, 5, WAIT_MS(0), &loan));
    CHECK(loan.data != NULL && loan.len == 5 && loan.capacity == 64);
    memcpy(loan.data, "hello", 5);
    CHECK_OK(shmb_channel_writer_publish(w, &loan, 5, 77, &seq));
    CHECK(seq == 0 && shmb_channel_writer_published(w) == 1);
    /* A loan is published once. */
    CHECK_RC(shmb_channel_writer_publish(w, &loan, 5, 77, &seq), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "not loaned") != NULL);
    CHECK(shmb_channel_writer_published(w) == 1);

    CHECK_OK(shmb_channel_reader_try_recv(r, &m1, &got));
    CHECK(got && m1.seq == 0 && m1.len == 5 && memcmp(m1.data, "hello", 5) == 0);
    CHECK(m1.tag == 77 && m1.lost == 0 && m1.flags == 0);
    CHECK(m1.timestamp_ns > 1600000000ull * 1000000000ull); /* after 2020 */
    /* Held while later messages flow. */
    CHECK_OK(shmb_channel_writer_send(w, "world", 5, 1, WAIT_MS(0), &seq));
    CHECK(seq == 1);
    CHECK_OK(shmb_channel_reader_recv(r, WAIT_MS(1000), &m2));
    CHECK(m2.seq == 1 && m2.len == 5 && memcmp(m2.data, "world", 5) == 0 && m2.tag == 1);
    CHECK(memcmp(m1.data, "hello", 5) == 0);
    CHECK_OK(shmb_channel_reader_release(r, &m1));
    CHECK_OK(shmb_channel_reader_release(r, &m1)); /* twice: nothing happens */
    CHECK_OK(shmb_channel_reader_release(r, &m2));

    /* A loan is asked for at most max_message; publish checks its length too, and the loan
     * stays outstanding after that failure. */
    CHECK_OK(shmb_channel_writer_loan(w, 64, WAIT_MS(0), &loan));
    memset(loan.data, 'z', loan.capacity);
    CHECK_RC(shmb_channel_writer_publish(w, &loan, 65, 0, &seq), SHMB_OUT_OF_BOUNDS);
    CHECK_OK(shmb_channel_writer_publish(w, &loan, 64, 2, &seq));
    CHECK(seq == 2);
    CHECK_OK(shmb_channel_reader_wait_ready(r, WAIT_MS(0)));
    CHECK_OK(shmb_channel_reader_try_recv(r, &m1, &got));
    CHECK(got && m1.len == 64 && ((const unsigned char *)m1.data)[63] == 'z');
    CHECK_OK(shmb_channel_reader_release(r, &m1));

    /* Waiting for nothing runs out, or stops on the interrupt; a bad timeout is refused. */
    CHECK_RC(shmb_channel_reader_wait_ready(r, WAIT_MS(20)), SHMB_TIMEOUT);
    CHECK_RC(shmb_channel_reader_recv(r, WAIT_MS(20), &m1), SHMB_TIMEOUT);
    CHECK_RC(shmb_channel_reader_recv(r, WAIT_MS(-2), &m1), SHMB_INVALID_ARGUMENT);
    shmb_wait_init(&stop);
    stop.interrupt = stop_now;
    stop.interrupt_user = &calls;
    CHECK_RC(shmb_channel_reader_recv(r, &stop, &m1), SHMB_ABORTED);
    CHECK(calls >= 1);

    /* The end: the rest first, then SHMB_WRITER_CLOSED; the writer refuses more. */
    CHECK_OK(shmb_channel_writer_send(w, "last", 4, 3, WAIT_MS(0), NULL));
    CHECK_OK(shmb_channel_writer_close(w));
    CHECK_OK(shmb_channel_writer_close(w));
    CHECK_RC(shmb_channel_writer_loan(w, 1, WAIT_MS(0), &loan), SHMB_CLOSED);
    CHECK_RC(shmb_channel_writer_send(w, "x", 1, 0, WAIT_MS(0), NULL), SHMB_CLOSED);
    CHECK_OK(shmb_channel_reader_recv(r, WAIT_MS(1000), &m1));
    CHECK(m1.seq == 3 && m1.len == 4 && memcmp(m1.data, "last", 4) == 0);
    CHECK_OK(shmb_channel_reader_release(r, &m1));
    CHECK_OK(shmb_channel_reader_wait_ready(r, WAIT_MS(0))); /* the end is "ready" too */
    CHECK_RC(shmb_channel_reader_try_recv(r, &m1, &got), SHMB_WRITER_CLOSED);
    CHECK(strstr(h_last_message(), name) != NULL);
    CHECK_RC(shmb_channel_reader_recv(r, WAIT_MS(1000), &m1), SHMB_WRITER_CLOSED);
    shmb_channel_reader_free(r);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* Block: three readers in three processes each get every message, in order, whole. */
static void test_block_fork(void) {
    const char *name = h_name(SUITE, "blk");
    const uint64_t n = 3000;
    const size_t max = 1000;
    shmb_channel_options o = opts(8, 4, SHMB_POLICY_BLOCK, max);
    shmb_channel_writer *w = NULL;
    pid_t kids[3];
    uint64_t i;
    int k;

    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    for (k = 0; k < 3; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            shmb_channel_reader *r = NULL;
            shmb_channel_message m;
            uint64_t want = 0;
            shmb_result rc;
            if (shmb_channel_reader_open(name, WAIT_MS(10000), &r) != SHMB_OK) _exit(10);
            while ((rc = shmb_channel_reader_recv(r, WAIT_MS(30000), &m)) == SHMB_OK) {
                if (m.seq != want || m.lost != 0) _exit(11);
                if (!msg_ok(&m, max)) _exit(12);
                if (shmb_channel_reader_release(r, &m) != SHMB_OK) _exit(13);
                want++;
            }
            _exit(rc == SHMB_WRITER_CLOSED && want == n ? 0 : 14);
        }
    }
    CHECK(wait_readers(w, 3));
    for (i = 0; i < n; i++) {
        shmb_result rc = i % 2 ? send_msg(w, i, max, WAIT_MS(30000)) : SHMB_OK;
        if (i % 2 == 0) {
            unsigned char buf[1000];
            size_t len = msg_len(i, max);
            uint64_t seq = 0;
            msg_fill(buf, i, len);
            rc = shmb_channel_writer_send(w, buf, len, (uint32_t)i, WAIT_MS(30000), &seq);
            if (rc == SHMB_OK && seq != i) rc = SHMB_PANIC;
        }
        if (rc != SHMB_OK) {
            CHECK_OK(rc);
            break;
        }
    }
    CHECK_OK(shmb_channel_writer_close(w));
    for (k = 0; k < 3; k++) CHECK(wait_child(kids[k]) == 0);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* Overwrite: the writer never waits; a reader learns what it lost; a held message stays. */
static void test_overwrite(void) {
    const char *name = h_name(SUITE, "ow");
    const char *name2 = h_name(SUITE, "owf");
    const size_t max = 512;
    shmb_channel_options o = opts(4, 1, SHMB_POLICY_OVERWRITE, max);
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL;
    shmb_channel_status *st = NULL;
    shmb_channel_place place;
    shmb_channel_message m, held;
    bool got = false;
    uint64_t i, first, next;
    pid_t pid;

    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
    CHECK(shmb_channel_reader_policy(r) == SHMB_POLICY_OVERWRITE);
    for (i = 0; i < 100; i++) CHECK_OK(send_msg(w, i, max, WAIT_MS(0)));
    CHECK_OK(shmb_channel_reader_try_recv(r, &m, &got));
    CHECK(got && m.seq >= 96 && m.lost == m.seq && msg_ok(&m, max));
    first = m.seq;
    CHECK_OK(shmb_channel_reader_release(r, &m));
    next = first + 1;
    while (shmb_channel_reader_try_recv(r, &m, &got) == SHMB_OK && got) {
        CHECK(m.seq == next && m.lost == 0 && msg_ok(&m, max));
        CHECK_OK(shmb_channel_reader_release(r, &m));
        next++;
    }
    CHECK(next == 100);
    CHECK_OK(shmb_channel_writer_status(w, &st));
    CHECK_OK(shmb_channel_status_place(st, 0, &place));
    CHECK(place.lost == first && place.taken == 100 - first && place.lag == 0);
    shmb_channel_status_free(st);
    /* A held message is never overwritten, however far the writer runs. */
    CHECK_OK(send_msg(w, 100, max, WAIT_MS(0)));
    CHECK_OK(shmb_channel_reader_try_recv(r, &held, &got));
    CHECK(got && held.seq == 100);
    for (i = 101; i < 200; i++) CHECK_OK(send_msg(w, i, max, WAIT_MS(0)));
    CHECK(msg_ok(&held, max));
    CHECK_OK(shmb_channel_reader_release(r, &held));
    shmb_channel_reader_free(r);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);

    /* Across processes: a slow reader in a child; the writer never waits (a zero wait). */
    CHECK_OK(shmb_channel_writer_create(name2, &o, &w));
    pid = fork();
    if (pid == 0) {
        shmb_channel_message c;
        uint64_t received = 0, lost = 0, prev = 0;
        int have_prev = 0;
        shmb_result rc;
        if (shmb_channel_reader_open(name2, WAIT_MS(10000), &r) != SHMB_OK) _exit(10);
        while ((rc = shmb_channel_reader_recv(r, WAIT_MS(30000), &c)) == SHMB_OK) {
            if (!msg_ok(&c, max)) _exit(11); /* torn */
            if (have_prev ? c.seq != prev + 1 + c.lost : c.seq != c.lost) _exit(12);
            received++;
            lost += c.lost;
            prev = c.seq;
            have_prev = 1;
            if (received % 64 == 0) sleep_us(200); /* fall behind */
            if (shmb_channel_reader_release(r, &c) != SHMB_OK) _exit(13);
        }
        _exit(rc == SHMB_WRITER_CLOSED && received + lost == 20000 && prev == 19999 ? 0 : 14);
    }
    CHECK(wait_readers(w, 1));
    for (i = 0; i < 20000; i++) {
        shmb_result rc = send_msg(w, i, max, WAIT_MS(0));
        if (rc != SHMB_OK) {
            CHECK_OK(rc);
            break;
        }
    }
    CHECK_OK(shmb_channel_writer_close(w));
    CHECK(wait_child(pid) == 0);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name2) == SHMB_OK);
}

static void test_history_and_checksum(void) {
    const char *name = h_name(SUITE, "hist");
    const char *name2 = h_name(SUITE, "crc");
    shmb_channel_options o = opts(8, 2, SHMB_POLICY_BLOCK, 256);
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL;
    shmb_segment *seg = NULL;
    shmb_channel_message m;
    bool got = false;
    uint64_t i, want = 7, queue = 0, slots = 0, slot_size = 0;
    uint32_t k = 0, header = 0;

    /* A late reader starts with the last `history` messages. */
    o.history = 3;
    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    for (i = 0; i < 10; i++) CHECK_OK(send_msg(w, i, 256, WAIT_MS(0)));
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
    while (shmb_channel_reader_try_recv(r, &m, &got) == SHMB_OK && got) {
        CHECK(m.seq == want && m.lost == 0 && msg_ok(&m, 256));
        CHECK_OK(shmb_channel_reader_release(r, &m));
        want++;
    }
    CHECK(want == 10);
    shmb_channel_reader_free(r);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);

    /* Checksums: a message changed after it was published is refused, and skipped. */
    o.history = 0;
    o.checksum = true;
    CHECK_OK(shmb_channel_writer_create(name2, &o, &w));
    CHECK_OK(shmb_channel_reader_open(name2, WAIT_MS(0), &r));
    CHECK_OK(shmb_channel_writer_send(w, "checked", 7, 0, WAIT_MS(0), NULL));
    CHECK_OK(shmb_channel_reader_recv(r, WAIT_MS(0), &m));
    CHECK(m.len == 7 && memcmp(m.data, "checked", 7) == 0);
    CHECK_OK(shmb_channel_reader_release(r, &m));
    CHECK_OK(shmb_channel_writer_send(w, "tampered", 8, 0, WAIT_MS(0), NULL));
    CHECK_OK(shmb_segment_open(name2, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, 0, &seg));
    {
        const shmb_region *reg = shmb_segment_region(seg);
        CHECK_OK(shmb_region_get_u64(reg, 176, &queue));
        CHECK_OK(shmb_region_get_u64(reg, 184, &slots));
        CHECK_OK(shmb_region_get_u64(reg, 144, &slot_size));
        CHECK_OK(shmb_region_get_u32(reg, 152, &header));
        CHECK_OK(shmb_region_get_u32(reg, queue + 16 * 1 + 8, &k)); /* message 1's slot */
        CHECK_OK(shmb_region_set_u8(reg, slots + k * slot_size + header, 'T'));
    }
    shmb_segment_free(seg);
    CHECK_RC(shmb_channel_reader_try_recv(r, &m, &got), SHMB_CHECKSUM_MISMATCH);
    CHECK(strstr(h_last_message(), "message 1") != NULL);
    CHECK_OK(shmb_channel_writer_send(w, "next", 4, 0, WAIT_MS(0), NULL));
    CHECK_OK(shmb_channel_reader_try_recv(r, &m, &got));
    CHECK(got && m.seq == 2 && m.len == 4 && memcmp(m.data, "next", 4) == 0);
    CHECK_OK(shmb_channel_reader_release(r, &m));
    shmb_channel_reader_free(r);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name2) == SHMB_OK);
}

static void test_bad_inputs(void) {
    const char *name = h_name(SUITE, "bad");
    const char *other = h_name(SUITE, "notch");
    const char *raw = h_name(SUITE, "raw");
    const char *missing = h_name(SUITE, "none");
    shmb_channel_options o;
    shmb_channel_writer *w = NULL, *w2 = NULL;
    shmb_channel_reader *r1 = NULL, *r2 = NULL, *r3 = NULL;
    shmb_channel_status *st = NULL;
    shmb_channel_loan a, b, c, forged;
    shmb_framed *f = NULL;
    shmb_segment *seg = NULL;
    unsigned char big[17];
    int i;

    /* Options out of range: refused, nothing created. */
    o = opts(1, 1, SHMB_POLICY_BLOCK, 16);
    CHECK_RC(shmb_channel_writer_create(name, &o, &w), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "slots") != NULL);
    o = opts(4, 0, SHMB_POLICY_BLOCK, 16);
    CHECK_RC(shmb_channel_writer_create(name, &o, &w), SHMB_INVALID_ARGUMENT);
    o = opts(4, 5000, SHMB_POLICY_BLOCK, 16);
    CHECK_RC(shmb_channel_writer_create(name, &o, &w), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "reader places") != NULL);
    o = opts(4, 1, SHMB_POLICY_BLOCK, 0);
    CHECK_RC(shmb_channel_writer_create(name, &o, &w), SHMB_INVALID_ARGUMENT);
    o = opts(4, 1, SHMB_POLICY_BLOCK, 16);
    o.history = 4;
    CHECK_RC(shmb_channel_writer_create(name, &o, &w), SHMB_INVALID_ARGUMENT);
    o = opts(4, 1, 7, 16);
    CHECK_RC(shmb_channel_writer_create(name, &o, &w), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "policy 7") != NULL);
    o = opts(4, 1, SHMB_POLICY_BLOCK, UINT64_MAX / 2);
    CHECK_RC(shmb_channel_writer_create(name, &o, &w), SHMB_INVALID_SIZE);
    o = opts(2, 2, SHMB_POLICY_BLOCK, 16);
    CHECK_RC(shmb_channel_writer_create("a/b", &o, &w), SHMB_INVALID_NAME);
    CHECK(w == NULL && !shm_exists(name));

    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    CHECK_RC(shmb_channel_writer_create(name, &o, &w2), SHMB_ALREADY_EXISTS);
    CHECK(w2 == NULL);
    /* A message larger than max_message. */
    memset(big, 1, sizeof big);
    CHECK_RC(shmb_channel_writer_loan(w, 17, WAIT_MS(0), &a), SHMB_OUT_OF_BOUNDS);
    CHECK(strstr(h_last_message(), "max_message") != NULL);
    CHECK_RC(shmb_channel_writer_send(w, big, 17, 0, WAIT_MS(0), NULL), SHMB_OUT_OF_BOUNDS);
    /* Loans that are never published give their slot back. */
    for (i = 0; i < 10; i++) {
        CHECK_OK(shmb_channel_writer_loan(w, 8, WAIT_MS(0), &a));
        memset(a.data, 0xEE, 8);
        CHECK_OK(shmb_channel_writer_discard(w, &a));
    }
    CHECK_RC(shmb_channel_writer_discard(w, &a), SHMB_INVALID_ARGUMENT); /* already given back */
    /* Both slots on loan: a third loan waits, and runs out. */
    CHECK_OK(shmb_channel_writer_loan(w, 8, WAIT_MS(0), &a));
    CHECK_OK(shmb_channel_writer_loan(w, 8, WAIT_MS(0), &b));
    CHECK(a.slot != b.slot && a.data != b.data);
    CHECK_RC(shmb_channel_writer_loan(w, 8, WAIT_MS(30), &c), SHMB_TIMEOUT);
    forged = a;
    forged.slot = 99;
    CHECK_RC(shmb_channel_writer_publish(w, &forged, 1, 0, NULL), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "slot 99") != NULL);
    CHECK_OK(shmb_channel_writer_discard(w, &b));
    CHECK_OK(shmb_channel_writer_publish(w, &a, 8, 0, NULL));
    CHECK(shmb_channel_writer_published(w) == 1);

    /* More readers than the channel allows. */
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r1));
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r2));
    CHECK(shmb_channel_reader_index(r1) != shmb_channel_reader_index(r2));
    CHECK_RC(shmb_channel_reader_open(name, WAIT_MS(0), &r3), SHMB_ALREADY_EXISTS);
    CHECK(strstr(h_last_message(), "2 reader places") != NULL && r3 == NULL);
    shmb_channel_reader_free(r2); /* a place freed is a place for the next reader */
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r3));
    shmb_channel_reader_free(r3);
    shmb_channel_reader_free(r1);
    r1 = NULL;

    /* Not a channel: a message segment, a raw segment, nothing at all. */
    CHECK_OK(shmb_framed_create(other, 64, 0, &f));
    CHECK_RC(shmb_channel_reader_open(other, WAIT_MS(0), &r1), SHMB_UNSUPPORTED);
    CHECK_RC(shmb_channel_status_read(other, &st), SHMB_UNSUPPORTED);
    shmb_framed_free(f);
    CHECK_OK(shmb_segment_open(raw, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 4096, 0, &seg));
    CHECK_OK(shmb_region_write(shmb_segment_region(seg), 0, "raw data", 8));
    CHECK_RC(shmb_channel_reader_open(raw, WAIT_MS(5000), &r1), SHMB_BAD_MAGIC);
    shmb_segment_free(seg);
    CHECK_RC(shmb_channel_reader_open(missing, WAIT_MS(30), &r1), SHMB_TIMEOUT);
    CHECK_RC(shmb_channel_reader_open(missing, WAIT_MS(-5), &r1), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_channel_status_read(missing, &st), SHMB_NOT_FOUND);
    CHECK(r1 == NULL && st == NULL);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* A reader (in a child) that takes every slot and never releases: a timed writer fails naming
 * it; once it dies, its holds and place go with it and the writer goes on. */
static void test_never_releases(void) {
    const char *name = h_name(SUITE, "hold");
    shmb_channel_options o = opts(2, 1, SHMB_POLICY_BLOCK, 64);
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL;
    shmb_channel_status *st = NULL;
    shmb_channel_info info;
    shmb_channel_loan loan;
    shmb_channel_message m;
    int to_kid[2], from_kid[2];
    char c = 0, want[64];
    pid_t pid;

    if (pipe(to_kid) != 0 || pipe(from_kid) != 0) exit(2);
    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    pid = fork();
    if (pid == 0) {
        shmb_channel_message x, y;
        close(to_kid[1]);
        close(from_kid[0]);
        if (shmb_channel_reader_open(name, WAIT_MS(10000), &r) != SHMB_OK) _exit(10);
        if (shmb_channel_reader_recv(r, WAIT_MS(10000), &x) != SHMB_OK) _exit(11);
        if (shmb_channel_reader_recv(r, WAIT_MS(10000), &y) != SHMB_OK) _exit(12);
        if (write(from_kid[1], "h", 1) != 1) _exit(13);
        if (read(to_kid[0], &c, 1) != 1) _exit(14);
        _exit(0); /* dies holding both, without freeing anything */
    }
    close(to_kid[0]);
    close(from_kid[1]);
    CHECK(wait_readers(w, 1));
    CHECK_OK(shmb_channel_writer_send(w, "a", 1, 0, WAIT_MS(0), NULL));
    CHECK_OK(shmb_channel_writer_send(w, "b", 1, 0, WAIT_MS(0), NULL));
    CHECK(read(from_kid[0], &c, 1) == 1 && c == 'h');
    CHECK_RC(shmb_channel_writer_loan(w, 1, WAIT_MS(100), &loan), SHMB_TIMEOUT);
    snprintf(want, sizeof want, "reader 0 (pid %ld) holds 2 message(s)", (long)pid);
    CHECK(strstr(h_last_message(), want) != NULL);
    CHECK(strstr(h_last_message(), name) != NULL);
    CHECK(write(to_kid[1], "q", 1) == 1);
    CHECK(wait_child(pid) == 0);
    close(to_kid[1]);
    close(from_kid[0]);
    /* Dead: it blocks nobody, and its place is free again. */
    CHECK_OK(shmb_channel_writer_send(w, "c", 1, 0, WAIT_MS(10000), NULL));
    CHECK_OK(shmb_channel_writer_send(w, "d", 1, 0, WAIT_MS(10000), NULL));
    CHECK_OK(shmb_channel_writer_status(w, &st));
    CHECK_OK(shmb_channel_status_info(st, &info));
    CHECK(info.places == 0 && info.head == 4);
    shmb_channel_status_free(st);
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
    CHECK(shmb_channel_reader_index(r) == 0);
    CHECK_OK(shmb_channel_writer_send(w, "for the new reader", 18, 0, WAIT_MS(10000), NULL));
    CHECK_OK(shmb_channel_reader_recv(r, WAIT_MS(0), &m));
    CHECK(m.seq == 4 && m.len == 18 && memcmp(m.data, "for the new reader", 18) == 0);
    shmb_channel_reader_free(r); /* frees the message too */
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* A writer that dies (exits without closing): readers get what it published, then
 * SHMB_PEER_GONE; one that closes: SHMB_WRITER_CLOSED. Status tells the two apart too. */
static void test_writer_end(void) {
    int round;
    for (round = 0; round < 2; round++) {
        const char *name = h_name(SUITE, round == 0 ? "wdied" : "wclosed");
        shmb_channel_reader *r = NULL;
        shmb_channel_status *st = NULL;
        shmb_channel_info info;
        shmb_channel_message m;
        shmb_result rc;
        int to_kid[2], from_kid[2];
        uint64_t got = 0;
        char c = 0;
        pid_t pid;

        if (pipe(to_kid) != 0 || pipe(from_kid) != 0) exit(2);
        pid = fork();
        if (pid == 0) {
            shmb_channel_options o = opts(8, 2, SHMB_POLICY_BLOCK, 300);
            shmb_channel_writer *w = NULL;
            uint64_t i;
            o.checksum = true;
            if (shmb_channel_writer_create(name, &o, &w) != SHMB_OK) _exit(10);
            if (write(from_kid[1], "c", 1) != 1 || read(to_kid[0], &c, 1) != 1) _exit(11);
            for (i = 0; i < 5; i++)
                if (send_msg(w, i, 300, WAIT_MS(10000)) != SHMB_OK) _exit(12);
            if (round == 1) shmb_channel_writer_free(w); /* closes */
            _exit(0);
        }
        CHECK(read(from_kid[0], &c, 1) == 1 && c == 'c');
        CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
        CHECK(write(to_kid[1], "g", 1) == 1);
        while ((rc = shmb_channel_reader_recv(r, WAIT_MS(30000), &m)) == SHMB_OK) {
            CHECK(m.seq == got && msg_ok(&m, 300));
            CHECK_OK(shmb_channel_reader_release(r, &m));
            got++;
        }
        CHECK(got == 5);
        if (round == 0) {
            CHECK_RC(rc, SHMB_PEER_GONE);
            CHECK(strstr(h_last_message(), "died") != NULL);
        } else {
            CHECK_RC(rc, SHMB_WRITER_CLOSED);
        }
        CHECK(wait_child(pid) == 0);
        CHECK_OK(shmb_channel_status_read(name, &st));
        CHECK_OK(shmb_channel_status_info(st, &info));
        CHECK(!info.writer_alive && info.closed == (round == 1) && info.head == 5);
        CHECK(info.checksum && info.slots == 8 && info.readers == 2 && info.max_message == 300);
        shmb_channel_status_free(st);
        shmb_channel_reader_free(r);
        close_pipes(to_kid, from_kid);
        CHECK(shmb_remove(name) == SHMB_OK);
    }
}

/* Status: configuration, the writer's progress and every occupied place. */
static void test_status(void) {
    const char *name = h_name(SUITE, "st");
    shmb_channel_options o = opts(8, 3, SHMB_POLICY_OVERWRITE, 100);
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL;
    shmb_channel_status *st = NULL;
    shmb_channel_info info;
    shmb_channel_place p;
    shmb_channel_message m;
    uint64_t i;

    o.history = 2;
    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
    for (i = 0; i < 3; i++) CHECK_OK(send_msg(w, i, 100, WAIT_MS(0)));
    CHECK_OK(shmb_channel_reader_recv(r, WAIT_MS(0), &m));
    CHECK_OK(shmb_channel_reader_release(r, &m));
    CHECK_OK(shmb_channel_status_read(name, &st));
    memset(&info, 0xAB, sizeof info);
    CHECK_OK(shmb_channel_status_info(st, &info));
    CHECK(info.slots == 8 && info.readers == 3 && info.max_message == 100);
    CHECK(info.policy == SHMB_POLICY_OVERWRITE && info.history == 2 && !info.checksum);
    CHECK(info.head == 3 && info.tail == 0 && !info.closed && info.writer_alive);
    CHECK(info.places == 1);
    CHECK_OK(shmb_channel_status_place(st, 0, &p));
    CHECK(p.index == 0 && p.active && p.alive && p.cursor == 1 && p.lag == 2);
    CHECK(p.taken == 1 && p.lost == 0 && p.pid == (uint32_t)getpid());
    shmb_channel_status_free(st);
    CHECK_OK(shmb_channel_writer_close(w));
    CHECK_OK(shmb_channel_writer_status(w, &st));
    CHECK_OK(shmb_channel_status_info(st, &info));
    CHECK(info.closed && info.writer_alive);
    shmb_channel_status_free(st);
    shmb_channel_reader_free(r);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* Corrupt queue entries, slot headers, cursors and layouts: errors naming the problem. */
static void test_corrupt(void) {
    const char *name = h_name(SUITE, "bad_hdr");
    shmb_channel_options o = opts(4, 1, SHMB_POLICY_BLOCK, 64);
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL, *r2 = NULL;
    shmb_channel_status *st = NULL;
    shmb_channel_message m;
    shmb_segment *seg = NULL;
    const shmb_region *reg;
    shmb_object *obj = NULL;
    uint64_t queue = 0, slots = 0, slot_size = 0, readers_off = 0, size = 0;
    uint32_t k = 0;
    bool got = false;

    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
    CHECK_OK(shmb_channel_writer_send(w, "fine", 4, 0, WAIT_MS(0), NULL));
    CHECK_OK(shmb_segment_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, 0, &seg));
    reg = shmb_segment_region(seg);
    CHECK_OK(shmb_region_get_u64(reg, 176, &queue));
    CHECK_OK(shmb_region_get_u64(reg, 184, &slots));
    CHECK_OK(shmb_region_get_u64(reg, 144, &slot_size));
    CHECK_OK(shmb_region_get_u64(reg, 168, &readers_off));
    CHECK_OK(shmb_region_get_u32(reg, queue + 8, &k));
    /* A queue entry that points past the last slot. */
    CHECK_OK(shmb_region_set_u32(reg, queue + 8, 99));
    CHECK_RC(shmb_channel_reader_try_recv(r, &m, &got), SHMB_CORRUPT_HEADER);
    CHECK(strstr(h_last_message(), "slot 99") != NULL && strstr(h_last_message(), name));
    CHECK_OK(shmb_region_set_u32(reg, queue + 8, k));
    /* A slot header that claims more than max_message. */
    CHECK_OK(shmb_region_set_u64(reg, slots + k * slot_size + 8, 1ull << 40));
    CHECK_RC(shmb_channel_reader_recv(r, WAIT_MS(0), &m), SHMB_CORRUPT_HEADER);
    CHECK(strstr(h_last_message(), "more than max_message") != NULL);
    CHECK_OK(shmb_region_set_u64(reg, slots + k * slot_size + 8, 4));
    /* A cursor past the writer's head. */
    CHECK_OK(shmb_region_set_u64(reg, readers_off, 1000));
    CHECK_RC(shmb_channel_reader_try_recv(r, &m, &got), SHMB_CORRUPT_HEADER);
    CHECK(strstr(h_last_message(), "past head") != NULL);
    CHECK_OK(shmb_region_set_u64(reg, readers_off, 0));
    /* Repaired, the message is still whole. */
    CHECK_OK(shmb_channel_reader_try_recv(r, &m, &got));
    CHECK(got && m.len == 4 && memcmp(m.data, "fine", 4) == 0);
    CHECK_OK(shmb_channel_reader_release(r, &m));
    shmb_channel_reader_free(r);

    /* Layouts that do not add up are refused at open (and by status). */
    CHECK_OK(shmb_region_set_u64(reg, 144, 64));
    CHECK_RC(shmb_channel_reader_open(name, WAIT_MS(0), &r2), SHMB_CORRUPT_HEADER);
    CHECK_RC(shmb_channel_status_read(name, &st), SHMB_CORRUPT_HEADER);
    CHECK_OK(shmb_region_set_u64(reg, 144, slot_size));
    CHECK_OK(shmb_region_set_u32(reg, 156, 9)); /* policy */
    CHECK_RC(shmb_channel_reader_open(name, WAIT_MS(0), &r2), SHMB_CORRUPT_HEADER);
    CHECK(strstr(h_last_message(), "policy 9") != NULL);
    CHECK_OK(shmb_region_set_u32(reg, 156, 0));
    CHECK_OK(shmb_region_set_u32(reg, 128, 1u << 20)); /* slots */
    CHECK_RC(shmb_channel_reader_open(name, WAIT_MS(0), &r2), SHMB_CORRUPT_HEADER);
    CHECK_OK(shmb_region_set_u32(reg, 128, 4));
    CHECK_OK(shmb_region_set_u32(reg, 132, 0)); /* readers */
    CHECK_RC(shmb_channel_reader_open(name, WAIT_MS(0), &r2), SHMB_CORRUPT_HEADER);
    CHECK_OK(shmb_region_set_u32(reg, 132, 1));
    shmb_segment_free(seg);
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r2)); /* repaired */
    shmb_channel_reader_free(r2);
    r2 = NULL;
    /* A segment shrunk below what its layout needs. */
    shmb_channel_writer_free(w);
    CHECK_OK(shmb_object_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, &obj));
    CHECK_OK(shmb_object_size(obj, &size));
    CHECK_OK(shmb_object_truncate(obj, size - 100));
    shmb_object_free(obj);
    CHECK_RC(shmb_channel_reader_open(name, WAIT_MS(0), &r2), SHMB_TRUNCATED);
    CHECK(r2 == NULL);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* SIGKILL at random moments. A writer killed mid-stream (mid-fill, mid-publish) never hands a
 * reader a torn message, and the reader ends with SHMB_PEER_GONE; a reader killed mid-stream
 * (mid-take, holding) never blocks the writer. */
static void test_sigkill(void) {
    const size_t max = 2000;
    int round;
    srand((unsigned)getpid());
    for (round = 0; round < 8; round++) {
        const char *name = h_name(SUITE, round % 2 ? "killw1" : "killw0");
        shmb_channel_reader *r = NULL;
        shmb_channel_message m;
        shmb_result rc;
        int to_kid[2], from_kid[2];
        char c = 0;
        pid_t writer, killer;
        long delay = 500 + rand() % 20000;

        if (pipe(to_kid) != 0 || pipe(from_kid) != 0) exit(2);
        writer = fork();
        if (writer == 0) {
            shmb_channel_options o = opts(8, 1, round % 2 ? SHMB_POLICY_OVERWRITE : SHMB_POLICY_BLOCK, max);
            shmb_channel_writer *w = NULL;
            uint64_t i;
            o.checksum = round % 4 < 2;
            if (shmb_channel_writer_create(name, &o, &w) != SHMB_OK) _exit(10);
            if (write(from_kid[1], "c", 1) != 1 || read(to_kid[0], &c, 1) != 1) _exit(11);
            for (i = 0;; i++)
                if (send_msg(w, i, max, WAIT_MS(30000)) != SHMB_OK) _exit(12);
        }
        CHECK(read(from_kid[0], &c, 1) == 1);
        CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));
        CHECK(write(to_kid[1], "g", 1) == 1);
        killer = fork();
        if (killer == 0) {
            sleep_us(delay);
            kill(writer, SIGKILL);
            _exit(0);
        }
        while ((rc = shmb_channel_reader_recv(r, WAIT_MS(30000), &m)) == SHMB_OK) {
            if (!msg_ok(&m, max)) {
                CHECK(!"a torn message");
                break;
            }
            CHECK_OK(shmb_channel_reader_release(r, &m));
        }
        CHECK_RC(rc, SHMB_PEER_GONE);
        CHECK(wait_child(killer) == 0);
        CHECK(wait_child(writer) == 128 + SIGKILL);
        shmb_channel_reader_free(r);
        close_pipes(to_kid, from_kid);
        (void)shmb_remove(name);
    }
    for (round = 0; round < 6; round++) {
        const char *name = h_name(SUITE, round % 2 ? "killr1" : "killr0");
        shmb_channel_options o = opts(4, 2, SHMB_POLICY_BLOCK, max);
        shmb_channel_writer *w = NULL;
        uint64_t i, kill_at = 50 + (uint64_t)(rand() % 3000);
        pid_t reader;

        CHECK_OK(shmb_channel_writer_create(name, &o, &w));
        reader = fork();
        if (reader == 0) {
            shmb_channel_reader *r = NULL;
            shmb_channel_message m;
            if (shmb_channel_reader_open(name, WAIT_MS(10000), &r) != SHMB_OK) _exit(10);
            while (shmb_channel_reader_recv(r, WAIT_MS(30000), &m) == SHMB_OK) {
                if (!msg_ok(&m, max)) _exit(11);
                if (round % 2 == 0 && shmb_channel_reader_release(r, &m) != SHMB_OK) _exit(12);
                /* odd rounds: it never releases, but keeps taking (blocked in recv then) */
            }
            _exit(13);
        }
        CHECK(wait_readers(w, 1));
        for (i = 0; i < kill_at + 200; i++) {
            shmb_result rc;
            if (i == kill_at) kill(reader, SIGKILL);
            rc = send_msg(w, i, max, WAIT_MS(i < kill_at && round % 2 ? 100 : 30000));
            if (rc == SHMB_TIMEOUT && i < kill_at && round % 2) { /* a reader holding every slot */
                kill_at = i;
                kill(reader, SIGKILL);
                rc = send_msg(w, i, max, WAIT_MS(30000));
            }
            if (rc != SHMB_OK) {
                CHECK_OK(rc);
                break;
            }
        }
        CHECK(wait_child(reader) == 128 + SIGKILL);
        CHECK(live_readers(w) == 0);
        shmb_channel_writer_free(w);
        CHECK(shmb_remove(name) == SHMB_OK);
    }
}

int main(void) {
    h_init();
    test_defaults();
    test_null_arguments();
    test_in_process();
    test_block_fork();
    test_overwrite();
    test_history_and_checksum();
    test_bad_inputs();
    test_never_releases();
    test_writer_end();
    test_status();
    test_corrupt();
    test_sigkill();
    return h_report("test_channel");
}
