/* Typed arrays through the C ABI (issue 12): array segments and array messages of every dtype,
 * C and F order, 0-d, empty and strided shapes, written by one process and read by a forked
 * one; every bad input (unknown dtype and order codes, ndim over 32, misaligned strides, a
 * planted header whose strides reach outside the data area, in a segment and in a message, a
 * segment shrunk under its handles, NULL arguments) is an error code with a message naming the
 * segment, never a signal or a hang. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#define SUITE "carr"

static const shmb_dtype DTYPES[14] = {
    SHMB_DTYPE_BOOL,    SHMB_DTYPE_INT8,    SHMB_DTYPE_INT16,     SHMB_DTYPE_INT32,
    SHMB_DTYPE_INT64,   SHMB_DTYPE_UINT8,   SHMB_DTYPE_UINT16,    SHMB_DTYPE_UINT32,
    SHMB_DTYPE_UINT64,  SHMB_DTYPE_FLOAT16, SHMB_DTYPE_FLOAT32,   SHMB_DTYPE_FLOAT64,
    SHMB_DTYPE_COMPLEX64, SHMB_DTYPE_COMPLEX128,
};
static const size_t ITEMSIZES[14] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 8, 16};

/* A layout case: a shape, and NULL strides (contiguous in the order) or given ones (in
 * elements; multiplied by the itemsize). */
struct layout {
    const char *what;
    size_t ndim;
    uint64_t shape[4];
    int has_strides;
    int64_t elem_strides[4];
};

static const struct layout LAYOUTS[] = {
    {"0-d", 0, {0}, 0, {0}},
    {"1-d", 1, {7}, 0, {0}},
    {"empty", 2, {0, 3}, 0, {0}},
    {"3-d", 3, {2, 3, 4}, 0, {0}},
    /* Every other row, reversed columns: non-contiguous, negative strides. */
    {"strided", 2, {3, 4}, 1, {8, -1}},
    /* A broadcast row: a zero stride. */
    {"broadcast", 2, {3, 5}, 1, {0, 1}},
};
#define NLAYOUTS (sizeof LAYOUTS / sizeof LAYOUTS[0])

static int wait_child(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int shm_exists(const char *name) {
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "/dev/shm/%s", name);
    return stat(p, &st) == 0;
}

/* The byte `b` of element number `k` (C order) of a `dtype` array: bools are 0 or 1. */
static unsigned char pattern(uint64_t k, size_t b, shmb_dtype dtype) {
    if (dtype == SHMB_DTYPE_BOOL) return (unsigned char)(k & 1);
    return (unsigned char)((k * 31u + b * 7u + 1u) & 0xffu);
}

/* The offset from `data` of element number `k` (in C order over the shape). */
static int64_t offset_of(const shmb_array_info *a, uint64_t k) {
    int64_t off = (int64_t)a->origin;
    size_t d;
    for (d = a->ndim; d-- > 0;) {
        uint64_t i = k % a->shape[d];
        k /= a->shape[d];
        off += (int64_t)i * a->strides[d];
    }
    return off;
}

/* Fill (`write`) or check every element of `a` whose data area is at `data`; returns the
 * number of elements that differ. Elements a zero stride aliases are written the same. */
static uint64_t walk(const shmb_array_info *a, unsigned char *data, int write) {
    uint64_t k, bad = 0;
    size_t b;
    for (k = 0; k < a->len; k++) {
        unsigned char *e = data + offset_of(a, k);
        /* With a zero stride, the element is the last number written to it: number it by its
         * offset instead, which every alias shares. */
        uint64_t id = (uint64_t)offset_of(a, k) / a->itemsize;
        for (b = 0; b < a->itemsize; b++) {
            if (write)
                e[b] = pattern(id, b, a->dtype);
            else if (e[b] != pattern(id, b, a->dtype))
                bad++;
        }
    }
    return bad;
}

/* The strides (bytes) a layout case should get for `itemsize` and `order`. */
static void expected_strides(const struct layout *l, size_t itemsize, shmb_order order,
                             int64_t *out) {
    size_t d;
    int64_t step = (int64_t)itemsize;
    if (l->has_strides) {
        for (d = 0; d < l->ndim; d++) out[d] = l->elem_strides[d] * (int64_t)itemsize;
        return;
    }
    if (order == SHMB_ORDER_C) {
        for (d = l->ndim; d-- > 0;) {
            out[d] = step;
            step *= (int64_t)(l->shape[d] ? l->shape[d] : 1);
        }
    } else {
        for (d = 0; d < l->ndim; d++) {
            out[d] = step;
            step *= (int64_t)(l->shape[d] ? l->shape[d] : 1);
        }
    }
}

/* Whether `a` is what layout `l` of `dtype` in `order` should be; 0 if so, else a code. */
static int info_matches(const shmb_array_info *a, const struct layout *l, size_t t,
                        shmb_order order) {
    int64_t want[4];
    uint64_t len = 1;
    size_t d;
    if (a->dtype != DTYPES[t] || a->itemsize != ITEMSIZES[t] || a->ndim != l->ndim) return 1;
    expected_strides(l, ITEMSIZES[t], order, want);
    for (d = 0; d < l->ndim; d++) {
        if (a->shape[d] != l->shape[d] || a->strides[d] != want[d]) return 2;
        len *= l->shape[d];
    }
    for (d = l->ndim; d < SHMB_MAX_NDIM; d++)
        if (a->shape[d] != 0 || a->strides[d] != 0) return 3;
    if (a->len != len) return 4;
    if (((uintptr_t)a->data) % 64 != 0) return 5;
    if (!l->has_strides && a->data_len != len * ITEMSIZES[t]) return 6;
    if (!l->has_strides && len > 1 && l->ndim > 1 && l->shape[0] > 1 && l->shape[l->ndim - 1] > 1 &&
        (a->c_contiguous != (order == SHMB_ORDER_C) || a->f_contiguous != (order == SHMB_ORDER_F)))
        return 7;
    if (l->has_strides && (a->c_contiguous || a->f_contiguous)) return 8;
    return 0;
}

static shmb_result create_case(const char *name, size_t t, const struct layout *l,
                               shmb_order order, shmb_array_segment **out) {
    int64_t strides[4];
    expected_strides(l, ITEMSIZES[t], order, strides);
    return shmb_array_segment_create(name, DTYPES[t], l->ndim, l->ndim ? l->shape : NULL,
                                     l->has_strides ? strides : NULL, order, 0, out);
}

/* Every dtype, C and F order, every layout: written and published by this process, opened,
 * checked and copied by a forked one. */
static void test_segments_across_processes(void) {
    const char *name = h_name(SUITE, "seg");
    size_t t, c;
    int o;
    for (t = 0; t < 14; t++)
        for (o = 0; o < 2; o++)
            for (c = 0; c < NLAYOUTS; c++) {
                const struct layout *l = &LAYOUTS[c];
                const shmb_order order = o ? SHMB_ORDER_F : SHMB_ORDER_C;
                shmb_array_segment *w = NULL;
                shmb_array_info a;
                pid_t pid;
                int rc;
                if (l->has_strides && o) continue; /* the order plays no part */
                CHECK_OK(create_case(name, t, l, order, &w));
                if (!w) continue;
                CHECK_OK(shmb_array_segment_info(w, &a));
                rc = info_matches(&a, l, t, order);
                if (rc) fprintf(stderr, "dtype %s %s order %d: info mismatch %d\n",
                                shmb_dtype_name(DTYPES[t]), l->what, o, rc);
                CHECK(rc == 0);
                CHECK(shmb_array_segment_dtype(w) == DTYPES[t]);
                CHECK(shmb_array_segment_ndim(w) == l->ndim);
                CHECK(shmb_array_segment_data(w) == a.data);
                CHECK(shmb_array_segment_data_len(w) == a.data_len);
                CHECK(l->ndim == 0 || memcmp(shmb_array_segment_shape(w), a.shape,
                                             l->ndim * sizeof(uint64_t)) == 0);
                CHECK(l->ndim == 0 || memcmp(shmb_array_segment_strides(w), a.strides,
                                             l->ndim * sizeof(int64_t)) == 0);
                CHECK(shmb_array_segment_writable(w));
                CHECK(shmb_array_segment_version(w) == 0);
                CHECK_OK(shmb_array_segment_begin_write(w));
                walk(&a, a.data, 1);
                CHECK_OK(shmb_array_segment_end_write(w, true));
                CHECK(shmb_array_segment_version(w) == 1);
                pid = fork();
                if (pid == 0) {
                    shmb_array_segment *r = NULL;
                    shmb_array_info b;
                    unsigned char *copy;
                    size_t n = 0;
                    uint64_t version = 0;
                    if (shmb_array_segment_open(name, SHMB_READ_ONLY, WAIT_MS(10000), &r) !=
                        SHMB_OK)
                        _exit(10);
                    if (shmb_array_segment_info(r, &b) != SHMB_OK) _exit(11);
                    if (info_matches(&b, l, t, order) != 0) _exit(12);
                    if (b.data_len != a.data_len || b.origin != a.origin) _exit(13);
                    if (walk(&b, b.data, 0) != 0) _exit(14); /* in place */
                    copy = malloc(b.data_len + 1);
                    if (shmb_array_segment_read(r, copy, b.data_len + 1, &n, &version) != SHMB_OK)
                        _exit(15);
                    if (n != b.data_len || version != 1) _exit(16);
                    if (walk(&b, copy, 0) != 0) _exit(17); /* the consistent copy */
                    if (shmb_array_segment_writable(r)) _exit(18);
                    free(copy);
                    shmb_array_segment_free(r);
                    _exit(0);
                }
                rc = wait_child(pid);
                if (rc) fprintf(stderr, "dtype %s %s order %d: reader exit %d\n",
                                shmb_dtype_name(DTYPES[t]), l->what, o, rc);
                CHECK(rc == 0);
                shmb_array_segment_free(w);
                CHECK(shmb_remove(name) == SHMB_OK);
            }
}

/* The next version: a forked reader waits for it, copies it, and sees the writer close. */
static void test_wait_for_versions(void) {
    const char *name = h_name(SUITE, "wait");
    const uint64_t shape[2] = {64, 64};
    int to_kid[2], from_kid[2];
    shmb_array_segment *w = NULL;
    pid_t pid;
    uint32_t v;
    char c;
    CHECK(pipe(to_kid) == 0 && pipe(from_kid) == 0);
    CHECK_OK(shmb_array_segment_create(name, SHMB_DTYPE_UINT32, 2, shape, NULL, SHMB_ORDER_C,
                                       0, &w));
    pid = fork();
    if (pid == 0) {
        shmb_array_segment *r = NULL;
        uint32_t *buf = malloc(64 * 64 * 4);
        size_t n = 0, i;
        uint64_t ver = 0;
        uint32_t count = 0;
        if (shmb_array_segment_open(name, SHMB_READ_WRITE, WAIT_MS(10000), &r) != SHMB_OK)
            _exit(10);
        if (write(from_kid[1], "o", 1) != 1) _exit(11);
        for (v = 1; v <= 5; v++) {
            if (shmb_array_segment_wait(r, WAIT_MS(30000), &count) != SHMB_OK) _exit(12);
            if (shmb_array_segment_read(r, buf, 64 * 64 * 4, &n, &ver) != SHMB_OK) _exit(13);
            for (i = 0; i < 64 * 64; i++)
                if (buf[i] != (uint32_t)ver * 1000u + (uint32_t)i) _exit(14); /* torn */
            if (ver != v) _exit(15);
            if (write(from_kid[1], "r", 1) != 1) _exit(16);
        }
        if (shmb_array_segment_wait(r, WAIT_MS(30000), NULL) != SHMB_WRITER_CLOSED) _exit(17);
        shmb_array_segment_free(r);
        free(buf);
        _exit(0);
    }
    CHECK(read(from_kid[0], &c, 1) == 1);
    for (v = 1; v <= 5; v++) {
        uint32_t *p = shmb_array_segment_data(w);
        size_t i;
        CHECK_OK(shmb_array_segment_begin_write(w));
        for (i = 0; i < 64 * 64; i++) p[i] = v * 1000u + (uint32_t)i;
        CHECK_OK(shmb_array_segment_end_write(w, true));
        CHECK(read(from_kid[0], &c, 1) == 1);
    }
    CHECK(shmb_array_segment_publish_count(w) == 5);
    CHECK_OK(shmb_array_segment_close_writer(w));
    CHECK(wait_child(pid) == 0);
    shmb_array_segment_free(w);
    close(to_kid[0]);
    close(to_kid[1]);
    close(from_kid[0]);
    close(from_kid[1]);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* Array messages of every dtype, C and F order, every layout, to a forked reader. */
static void test_messages_across_processes(void) {
    const char *name = h_name(SUITE, "chan");
    shmb_channel_options o;
    shmb_channel_writer *w = NULL;
    shmb_channel_status *st = NULL;
    shmb_channel_info ci;
    pid_t pid;
    size_t t, c;
    int ord, i;
    shmb_channel_options_init(&o);
    o.slots = 4;
    o.readers = 1;
    o.max_message = 4096;
    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    pid = fork();
    if (pid == 0) {
        shmb_channel_reader *r = NULL;
        shmb_channel_message m;
        shmb_array_info a;
        shmb_result rc;
        uint32_t n = 0;
        if (shmb_channel_reader_open(name, WAIT_MS(10000), &r) != SHMB_OK) _exit(10);
        /* First a raw message: it has no array header. */
        if (shmb_channel_reader_recv(r, WAIT_MS(30000), &m) != SHMB_OK) _exit(11);
        if ((m.flags & SHMB_MESSAGE_ARRAY) != 0) _exit(12);
        if (shmb_channel_message_array(r, &m, &a) != SHMB_INVALID_ARGUMENT) _exit(13);
        if (strstr(h_last_message(), "no array header") == NULL) _exit(14);
        if (strstr(h_last_message(), name) == NULL) _exit(15);
        shmb_channel_reader_release(r, &m);
        while ((rc = shmb_channel_reader_recv(r, WAIT_MS(30000), &m)) == SHMB_OK) {
            const size_t tt = m.tag / 100, cc = (m.tag / 10) % 10;
            const shmb_order oo = m.tag % 10 ? SHMB_ORDER_F : SHMB_ORDER_C;
            if (!(m.flags & SHMB_MESSAGE_ARRAY)) _exit(16);
            if (shmb_channel_message_array(r, &m, &a) != SHMB_OK) _exit(17);
            if (info_matches(&a, &LAYOUTS[cc], tt, oo) != 0) _exit(18);
            if ((const unsigned char *)a.data < (const unsigned char *)m.data ||
                (const unsigned char *)a.data + a.data_len >
                    (const unsigned char *)m.data + m.len)
                _exit(19);
            if (walk(&a, a.data, 0) != 0) _exit(20);
            shmb_channel_reader_release(r, &m);
            /* Released: it is no message of this reader any more. */
            if (shmb_channel_message_array(r, &m, &a) != SHMB_INVALID_ARGUMENT) _exit(21);
            n++;
        }
        if (rc != SHMB_WRITER_CLOSED) _exit(22);
        shmb_channel_reader_free(r);
        _exit(n == 14 * (NLAYOUTS * 2 - 2) ? 0 : 23);
    }
    /* Wait for the reader's place (30 s at most). */
    for (i = 0; i < 30000; i++) {
        struct timespec ts = {0, 1000000};
        CHECK_OK(shmb_channel_writer_status(w, &st));
        CHECK_OK(shmb_channel_status_info(st, &ci));
        shmb_channel_status_free(st);
        if (ci.places == 1) break;
        nanosleep(&ts, NULL);
    }
    CHECK_OK(shmb_channel_writer_send(w, "raw", 3, 0, WAIT_MS(30000), NULL));
    for (t = 0; t < 14; t++)
        for (ord = 0; ord < 2; ord++)
            for (c = 0; c < NLAYOUTS; c++) {
                const struct layout *l = &LAYOUTS[c];
                const shmb_order order = ord ? SHMB_ORDER_F : SHMB_ORDER_C;
                int64_t strides[4];
                shmb_channel_loan loan;
                shmb_array_info a;
                if (l->has_strides && ord) continue;
                expected_strides(l, ITEMSIZES[t], order, strides);
                CHECK_OK(shmb_channel_writer_loan_array(w, DTYPES[t], l->ndim,
                                                        l->ndim ? l->shape : NULL,
                                                        l->has_strides ? strides : NULL, order,
                                                        WAIT_MS(30000), &loan, &a));
                CHECK(info_matches(&a, l, t, order) == 0);
                CHECK((unsigned char *)a.data >= (unsigned char *)loan.data &&
                      (unsigned char *)a.data + a.data_len <= (unsigned char *)loan.data + loan.len);
                walk(&a, a.data, 1);
                /* An array loan is published whole. */
                CHECK_RC(shmb_channel_writer_publish(w, &loan, loan.len + 1, 0, NULL),
                         SHMB_INVALID_ARGUMENT);
                CHECK_OK(shmb_channel_writer_publish(w, &loan, loan.len,
                                                     (uint32_t)(t * 100 + c * 10 + (size_t)ord),
                                                     NULL));
            }
    CHECK_OK(shmb_channel_writer_close(w));
    CHECK(wait_child(pid) == 0);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* Loans that do not wait, discards, a loan larger than max_message. */
static void test_loans(void) {
    const char *name = h_name(SUITE, "loan");
    const uint64_t shape[2] = {16, 16};
    const uint64_t big[2] = {1024, 1024};
    shmb_channel_options o;
    shmb_channel_writer *w = NULL;
    shmb_channel_loan l1, l2, l3;
    shmb_array_info a;
    bool got = false;
    shmb_channel_options_init(&o);
    o.slots = 2;
    o.max_message = 4096;
    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    CHECK_OK(shmb_channel_writer_try_loan_array(w, SHMB_DTYPE_FLOAT64, 2, shape, NULL,
                                                SHMB_ORDER_C, &l1, &a, &got));
    CHECK(got && a.len == 256 && a.data_len == 2048 && l1.len == 128 + 2048);
    CHECK_OK(shmb_channel_writer_try_loan_array(w, SHMB_DTYPE_FLOAT64, 2, shape, NULL,
                                                SHMB_ORDER_F, &l2, &a, &got));
    CHECK(got && a.f_contiguous && !a.c_contiguous);
    /* Both slots are loaned: no third, and no wait. */
    got = true;
    CHECK_OK(shmb_channel_writer_try_loan_array(w, SHMB_DTYPE_FLOAT64, 2, shape, NULL,
                                                SHMB_ORDER_C, &l3, &a, &got));
    CHECK(!got);
    CHECK_RC(shmb_channel_writer_loan_array(w, SHMB_DTYPE_FLOAT64, 2, shape, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), &l3, &a),
             SHMB_TIMEOUT);
    CHECK_OK(shmb_channel_writer_discard(w, &l1));
    CHECK_OK(shmb_channel_writer_discard(w, &l2));
    CHECK_RC(shmb_channel_writer_discard(w, &l2), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_channel_writer_loan_array(w, SHMB_DTYPE_UINT8, 2, big, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), &l3, &a),
             SHMB_OUT_OF_BOUNDS);
    CHECK(strstr(h_last_message(), "max_message") != NULL);
    CHECK(strstr(h_last_message(), name) != NULL);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

/* Map the named segment read-write (for planting a bad header). */
static unsigned char *map_shm(const char *name, size_t *len) {
    char p[256];
    struct stat st;
    void *m;
    int fd;
    snprintf(p, sizeof p, "/dev/shm/%s", name);
    fd = open(p, O_RDWR);
    if (fd < 0) return NULL;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    *len = (size_t)st.st_size;
    m = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return m == MAP_FAILED ? NULL : m;
}

static void shrink(const char *name, off_t to) {
    char p[256];
    int fd;
    snprintf(p, sizeof p, "/dev/shm/%s", name);
    fd = open(p, O_WRONLY);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(ftruncate(fd, to) == 0);
        close(fd);
    }
}

/* The array header's offsets in an array segment (SPEC 7.5: at 192) and a message (at 0). */
#define SEG_HEADER 192
#define STRIDE0 72

static void put_i64(unsigned char *p, int64_t v) {
    memcpy(p, &v, 8); /* little-endian hosts only, as the layout */
}

static void test_bad_inputs(void) {
    const char *name = h_name(SUITE, "bad");
    const uint64_t shape[2] = {4, 4};
    uint64_t many[33];
    const int64_t misaligned[2] = {16, 3};
    shmb_array_segment *s = NULL, *r = NULL;
    shmb_array_info a;
    unsigned char buf[64];
    size_t n = 0, i, maplen = 0;
    unsigned char *map;
    for (i = 0; i < 33; i++) many[i] = 1;

    /* Unknown codes, too many dimensions, misaligned strides: refused, nothing created. */
    CHECK_RC(shmb_array_segment_create(name, 0x6621, 2, shape, NULL, SHMB_ORDER_C, 0, &s),
             SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "unknown dtype code 0x6621") != NULL);
    CHECK(strstr(h_last_message(), name) != NULL);
    CHECK_RC(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, shape, NULL, 7, 0, &s),
             SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "unknown order 7") != NULL);
    CHECK_RC(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 33, many, NULL, SHMB_ORDER_C, 0,
                                       &s),
             SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "ndim 33") != NULL);
    CHECK_RC(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, shape, misaligned,
                                       SHMB_ORDER_C, 0, &s),
             SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), name) != NULL);
    CHECK(s == NULL && !shm_exists(name));
    CHECK(shmb_dtype_itemsize(0x6621) == 0 && shmb_dtype_name(0x6621) == NULL);
    CHECK(shmb_dtype_itemsize(SHMB_DTYPE_COMPLEX128) == 16);

    /* NULLs. */
    CHECK_RC(shmb_array_segment_create(NULL, SHMB_DTYPE_FLOAT32, 2, shape, NULL, SHMB_ORDER_C, 0,
                                       &s),
             SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, NULL, NULL, SHMB_ORDER_C, 0,
                                       &s),
             SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, shape, NULL, SHMB_ORDER_C, 0,
                                       NULL),
             SHMB_NULL_ARGUMENT);
    CHECK(!shm_exists(name));
    CHECK_RC(shmb_array_segment_open(NULL, SHMB_READ_ONLY, WAIT_MS(0), &r), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_open(name, SHMB_READ_ONLY, WAIT_MS(0), NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_open(name, SHMB_READ_ONLY, WAIT_MS(0), &r), SHMB_TIMEOUT);
    CHECK_RC(shmb_array_segment_open(name, 9, WAIT_MS(0), &r), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_array_segment_open_owner(name, SHMB_READ_ONLY, -3, WAIT_MS(0), &r),
             SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_array_segment_info(NULL, &a), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_begin_write(NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_end_write(NULL, true), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_publish(NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_write(NULL, buf, 1), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_read(NULL, buf, sizeof buf, &n, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_wait(NULL, WAIT_MS(0), NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_close_writer(NULL), SHMB_NULL_ARGUMENT);
    CHECK(shmb_array_segment_data(NULL) == NULL && shmb_array_segment_shape(NULL) == NULL &&
          shmb_array_segment_strides(NULL) == NULL && shmb_array_segment_name(NULL) == NULL &&
          shmb_array_segment_ndim(NULL) == 0 && shmb_array_segment_dtype(NULL) == 0 &&
          shmb_array_segment_data_len(NULL) == 0 && shmb_array_segment_version(NULL) == 0 &&
          !shmb_array_segment_writable(NULL));
    shmb_array_segment_free(NULL);
    CHECK_RC(shmb_channel_message_array(NULL, NULL, &a), SHMB_NULL_ARGUMENT);

    /* A real segment: wrong buffers and write brackets, a read-only handle. */
    CHECK_OK(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, shape, NULL, SHMB_ORDER_C, 0,
                                       &s));
    CHECK(strcmp(shmb_array_segment_name(s), name) == 0);
    CHECK_RC(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, shape, NULL, SHMB_ORDER_C, 0,
                                       &r),
             SHMB_ALREADY_EXISTS);
    CHECK_RC(shmb_array_segment_info(s, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_read(s, buf, 10, &n, NULL), SHMB_BUFFER_TOO_SMALL);
    CHECK(n == 64);
    n = 7;
    CHECK_RC(shmb_array_segment_read(s, NULL, 64, &n, NULL), SHMB_NULL_ARGUMENT);
    CHECK(n == 7); /* nothing written on that failure */
    CHECK_RC(shmb_array_segment_read(s, buf, 64, NULL, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_array_segment_write(s, buf, 10), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "10 bytes") != NULL);
    CHECK_RC(shmb_array_segment_write(s, NULL, 64), SHMB_NULL_ARGUMENT);
    for (i = 0; i < 64; i++) buf[i] = (unsigned char)i;
    CHECK_OK(shmb_array_segment_write(s, buf, 64));
    CHECK(shmb_array_segment_version(s) == 1);
    CHECK_RC(shmb_array_segment_end_write(s, true), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "no write is in progress") != NULL);
    CHECK_OK(shmb_array_segment_begin_write(s));
    CHECK_RC(shmb_array_segment_begin_write(s), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_array_segment_publish(s), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_array_segment_write(s, buf, 64), SHMB_INVALID_ARGUMENT);
    CHECK_OK(shmb_array_segment_end_write(s, false)); /* abandoned: a version, nobody woken */
    CHECK(shmb_array_segment_version(s) == 2 && shmb_array_segment_publish_count(s) == 1);
    CHECK_OK(shmb_array_segment_publish(s));
    CHECK(shmb_array_segment_version(s) == 3 && shmb_array_segment_publish_count(s) == 2);
    CHECK_OK(shmb_array_segment_open(name, SHMB_READ_ONLY, WAIT_MS(0), &r));
    CHECK_RC(shmb_array_segment_begin_write(r), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_array_segment_write(r, buf, 64), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_array_segment_close_writer(r), SHMB_PERMISSION_DENIED);
    memset(buf, 0, sizeof buf);
    CHECK_OK(shmb_array_segment_read(r, buf, 64, &n, NULL));
    CHECK(n == 64 && buf[63] == 63);
    CHECK_RC(shmb_array_segment_wait(r, WAIT_MS(0), NULL), SHMB_TIMEOUT);
    /* A write left open when the handle goes: ended, so readers' copies do not wait. */
    CHECK_OK(shmb_array_segment_begin_write(s));
    shmb_array_segment_free(s);
    s = NULL;
    CHECK_OK(shmb_array_segment_read(r, buf, 64, &n, NULL));

    /* The shrunk segment: every access through a handle fails, a new open too. */
    shrink(name, 256);
    CHECK_RC(shmb_array_segment_read(r, buf, 64, &n, NULL), SHMB_TRUNCATED);
    CHECK(strstr(h_last_message(), name) != NULL);
    shmb_array_segment_free(r);
    r = NULL;
    CHECK_RC(shmb_array_segment_open(name, SHMB_READ_WRITE, WAIT_MS(0), &r), SHMB_TRUNCATED);
    CHECK(strstr(h_last_message(), name) != NULL && r == NULL);
    CHECK(shmb_remove(name) == SHMB_OK);

    /* A writer whose segment shrinks under it. */
    CHECK_OK(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, shape, NULL, SHMB_ORDER_C, 0,
                                       &s));
    shrink(name, 192);
    CHECK_RC(shmb_array_segment_begin_write(s), SHMB_TRUNCATED);
    CHECK_RC(shmb_array_segment_write(s, buf, 64), SHMB_TRUNCATED);
    CHECK_RC(shmb_array_segment_publish(s), SHMB_TRUNCATED);
    shmb_array_segment_free(s);
    s = NULL;
    CHECK(shmb_remove(name) == SHMB_OK);

    /* Planted headers: strides reaching outside the data area, a negative reach, a misaligned
     * stride, 33 dimensions, an unknown element type. */
    {
        struct plant {
            size_t at;
            int64_t value;
            int byte;
            shmb_result want;
            const char *says;
        } plants[] = {
            {SEG_HEADER + STRIDE0, 1000, 0, SHMB_CORRUPT_HEADER, "outside"},
            {SEG_HEADER + STRIDE0, -16, 0, SHMB_CORRUPT_HEADER, "outside"},
            {SEG_HEADER + STRIDE0, 6, 0, SHMB_CORRUPT_HEADER, "multiple"},
            {SEG_HEADER + 18, 33, 1, SHMB_UNSUPPORTED, "33"},
            {SEG_HEADER + 17, 24, 1, SHMB_UNSUPPORTED, "element type"},
        };
        size_t p;
        for (p = 0; p < sizeof plants / sizeof plants[0]; p++) {
            CHECK_OK(shmb_array_segment_create(name, SHMB_DTYPE_FLOAT32, 2, shape, NULL,
                                               SHMB_ORDER_C, 0, &s));
            map = map_shm(name, &maplen);
            CHECK(map != NULL);
            if (map) {
                if (plants[p].byte)
                    map[plants[p].at] = (unsigned char)plants[p].value;
                else
                    put_i64(map + plants[p].at, plants[p].value);
                munmap(map, maplen);
            }
            CHECK_RC(shmb_array_segment_open(name, SHMB_READ_ONLY, WAIT_MS(0), &r), plants[p].want);
            if (strstr(h_last_message(), plants[p].says) == NULL ||
                strstr(h_last_message(), name) == NULL)
                fprintf(stderr, "plant %zu: message '%s'\n", p, h_last_message());
            CHECK(strstr(h_last_message(), plants[p].says) != NULL);
            CHECK(strstr(h_last_message(), name) != NULL && r == NULL);
            shmb_array_segment_free(s);
            s = NULL;
            CHECK(shmb_remove(name) == SHMB_OK);
        }
    }

    /* Not an array segment: a channel under the name. */
    {
        shmb_channel_writer *w = NULL;
        CHECK_OK(shmb_channel_writer_create(name, NULL, &w));
        CHECK_RC(shmb_array_segment_open(name, SHMB_READ_ONLY, WAIT_MS(0), &r), SHMB_UNSUPPORTED);
        CHECK(strstr(h_last_message(), "not an array segment") != NULL);
        shmb_channel_writer_free(w);
        CHECK(shmb_remove(name) == SHMB_OK);
    }
}

/* A message whose planted header's strides reach outside it: the reader gets an error naming
 * the channel and the message; bad loan arguments. */
static void test_bad_messages(void) {
    const char *name = h_name(SUITE, "badmsg");
    const uint64_t shape[2] = {4, 4};
    uint64_t many[33];
    shmb_channel_options o;
    shmb_channel_writer *w = NULL;
    shmb_channel_reader *r = NULL;
    shmb_channel_loan loan;
    shmb_channel_message m;
    shmb_array_info a;
    bool got;
    size_t i;
    for (i = 0; i < 33; i++) many[i] = 1;
    shmb_channel_options_init(&o);
    o.readers = 1;
    CHECK_OK(shmb_channel_writer_create(name, &o, &w));
    CHECK_OK(shmb_channel_reader_open(name, WAIT_MS(0), &r));

    CHECK_RC(shmb_channel_writer_loan_array(w, 0x7508 + 1, 2, shape, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), &loan, &a),
             SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "unknown dtype code") != NULL);
    CHECK(strstr(h_last_message(), name) != NULL);
    CHECK_RC(shmb_channel_writer_loan_array(w, SHMB_DTYPE_UINT8, 33, many, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), &loan, &a),
             SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_channel_writer_loan_array(NULL, SHMB_DTYPE_UINT8, 2, shape, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), &loan, &a),
             SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_loan_array(w, SHMB_DTYPE_UINT8, 2, shape, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), NULL, &a),
             SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_loan_array(w, SHMB_DTYPE_UINT8, 2, shape, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), &loan, NULL),
             SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_loan_array(w, SHMB_DTYPE_UINT8, 2, NULL, NULL, SHMB_ORDER_C,
                                            WAIT_MS(0), &loan, &a),
             SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_writer_try_loan_array(w, SHMB_DTYPE_UINT8, 2, shape, NULL, SHMB_ORDER_C,
                                                &loan, &a, NULL),
             SHMB_NULL_ARGUMENT);
    /* Nothing was loaned by the failures: both slots of a default channel are free. */
    CHECK_OK(shmb_channel_writer_try_loan_array(w, SHMB_DTYPE_FLOAT32, 2, shape, NULL,
                                                SHMB_ORDER_C, &loan, &a, &got));
    CHECK(got);
    /* The writer (or anything that can write the slot) plants strides reaching outside. */
    put_i64((unsigned char *)loan.data + STRIDE0, 4096);
    CHECK_OK(shmb_channel_writer_publish(w, &loan, loan.len, 0, NULL));
    CHECK_OK(shmb_channel_reader_recv(r, WAIT_MS(1000), &m));
    CHECK(m.flags & SHMB_MESSAGE_ARRAY);
    CHECK_RC(shmb_channel_message_array(r, &m, &a), SHMB_CORRUPT_HEADER);
    CHECK(strstr(h_last_message(), name) != NULL);
    CHECK(strstr(h_last_message(), "message 0") != NULL);
    CHECK_RC(shmb_channel_message_array(r, &m, NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_channel_message_array(r, NULL, &a), SHMB_NULL_ARGUMENT);
    CHECK_OK(shmb_channel_reader_release(r, &m));
    shmb_channel_reader_free(r);
    shmb_channel_writer_free(w);
    CHECK(shmb_remove(name) == SHMB_OK);
}

int main(void) {
    h_init();
    test_segments_across_processes();
    test_wait_for_versions();
    test_messages_across_processes();
    test_loans();
    test_bad_inputs();
    test_bad_messages();
    return h_report("test_array");
}
