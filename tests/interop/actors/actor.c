/* The C participant of the interop suite: shmbridge.h only.
 * Command line: tests/interop/PROTOCOL.md. */
#define _POSIX_C_SOURCE 200809L
#include <shmbridge.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static const char *arg(int argc, char **argv, const char *key) {
    for (int i = 2; i + 1 < argc; i += 2)
        if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, key) == 0) return argv[i + 1];
    return NULL;
}

/* shmb_result -> the protocol's error kind. */
static const char *kind(shmb_result r) {
    switch (r) {
        case SHMB_INVALID_NAME: return "invalid_name";
        case SHMB_INVALID_SIZE: return "invalid_size";
        case SHMB_INVALID_ARGUMENT: return "invalid_argument";
        case SHMB_ALREADY_EXISTS: return "already_exists";
        case SHMB_NOT_FOUND: return "not_found";
        case SHMB_PERMISSION_DENIED: return "permission_denied";
        case SHMB_NO_SPACE: return "no_space";
        case SHMB_BAD_MAGIC: return "bad_magic";
        case SHMB_UNSUPPORTED_VERSION: return "unsupported_version";
        case SHMB_CORRUPT_HEADER: return "corrupt_header";
        case SHMB_TRUNCATED: return "truncated";
        case SHMB_OUT_OF_BOUNDS: return "out_of_bounds";
        case SHMB_CHECKSUM_MISMATCH: return "checksum_mismatch";
        case SHMB_TIMEOUT: return "timeout";
        case SHMB_UNSUPPORTED: return "unsupported";
        case SHMB_WRITER_CLOSED: return "writer_closed";
        case SHMB_PEER_GONE: return "peer_gone";
        case SHMB_CLOSED: return "closed";
        case SHMB_ABORTED: return "aborted";
        default: return "os";
    }
}

static void print_str(const char *s) {
    putchar('"');
    for (; *s; ++s) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) putchar(' ');
        else putchar(*s);
    }
    putchar('"');
}

/* Print the failure of the last call as the one JSON line, and return the exit code 1. */
static int fail(shmb_result r) {
    char msg[1024];
    size_t n = 0;
    if (shmb_last_error_message(msg, sizeof msg, &n) != SHMB_OK) msg[0] = '\0';
    printf("{\"ok\": false, \"actor\": \"c\", \"error\": \"%s\", \"message\": ", kind(r));
    print_str(msg);
    printf("}\n");
    return 1;
}

static int fail_with(const char *error, const char *message) {
    printf("{\"ok\": false, \"actor\": \"c\", \"error\": \"%s\", \"message\": ", error);
    print_str(message);
    printf("}\n");
    return 1;
}

#define TRY(call)                                   \
    do {                                            \
        shmb_result r_ = (call);                    \
        if (r_ != SHMB_OK) return fail(r_);         \
    } while (0)

static unsigned long crc_of(const unsigned char *d, size_t n) {
    unsigned long c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, d, k);
        d += k;
        n -= k;
    }
    return c;
}

static unsigned char *pattern(size_t n, unsigned p) {
    unsigned char *v = malloc(n ? n : 1);
    for (size_t i = 0; i < n; ++i) v[i] = (unsigned char)((i * 31 + p) % 251);
    return v;
}

static unsigned char *load(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static int layout_is(const char *layout, const char *want) { return layout && strcmp(layout, want) == 0; }

static int cmd_write(int argc, char **argv, const char *name) {
    const char *layout = arg(argc, argv, "layout");
    const char *file = arg(argc, argv, "file");
    const char *perm_s = arg(argc, argv, "perm");
    uint32_t perm = perm_s ? (uint32_t)strtoul(perm_s, NULL, 8) : SHMB_PERM_DEFAULT;
    size_t n = 0;
    unsigned char *data;
    if (file) {
        data = load(file, &n);
        if (!data) return fail_with("not_found", strerror(errno));
    } else {
        n = (size_t)strtoull(arg(argc, argv, "size"), NULL, 10);
        data = pattern(n, (unsigned)strtoul(arg(argc, argv, "pattern"), NULL, 10));
    }
    int rc = 0;
    if (layout_is(layout, "framed")) {
        shmb_framed *f = NULL;
        shmb_result r = shmb_framed_create(name, n, perm, &f);
        if (r == SHMB_OK) r = shmb_framed_write(f, data, n);
        shmb_framed_free(f);
        if (r != SHMB_OK) rc = fail(r);
    } else {
        int prefixed = layout_is(layout, "size-prefixed");
        shmb_segment *seg = NULL;
        shmb_result r = shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, n + (prefixed ? 8 : 0), perm, &seg);
        if (r == SHMB_OK) {
            const shmb_region *reg = shmb_segment_region(seg);
            r = prefixed ? shmb_prefixed_write(reg, data, n) : shmb_region_write(reg, 0, data, n);
        }
        shmb_segment_free(seg);
        if (r != SHMB_OK) rc = fail(r);
    }
    if (rc == 0) printf("{\"ok\": true, \"actor\": \"c\", \"bytes\": %zu, \"crc32\": %lu}\n", n, crc_of(data, n));
    free(data);
    return rc;
}

static int cmd_read(int argc, char **argv, const char *name) {
    const char *layout = arg(argc, argv, "layout");
    const char *out = arg(argc, argv, "out");
    const char *pat = arg(argc, argv, "pattern");
    unsigned char *data = NULL;
    size_t n = 0;
    if (layout_is(layout, "framed")) {
        shmb_framed *f = NULL;
        TRY(shmb_framed_open(name, SHMB_READ_ONLY, &f));
        size_t cap = (size_t)shmb_framed_capacity(f);
        data = malloc(cap ? cap : 1);
        shmb_result r = shmb_framed_read(f, data, cap, &n);
        shmb_framed_free(f);
        if (r != SHMB_OK) { free(data); return fail(r); }
    } else {
        shmb_segment *seg = NULL;
        TRY(shmb_segment_open(name, SHMB_OPEN_ONLY, SHMB_READ_ONLY, 0, SHMB_PERM_DEFAULT, &seg));
        const shmb_region *reg = shmb_segment_region(seg);
        size_t len = shmb_region_len(reg);
        data = malloc(len ? len : 1);
        shmb_result r = layout_is(layout, "size-prefixed") ? shmb_prefixed_read(reg, data, len, &n)
                                                           : shmb_region_read(reg, 0, data, len);
        if (!layout_is(layout, "size-prefixed")) n = len;
        shmb_segment_free(seg);
        if (r != SHMB_OK) { free(data); return fail(r); }
    }
    if (out) {
        FILE *f = fopen(out, "wb");
        if (!f || fwrite(data, 1, n, f) != n) { free(data); return fail_with("os", "cannot write --out"); }
        fclose(f);
    }
    int same = 1;
    if (pat) {
        unsigned char *want = pattern(n, (unsigned)strtoul(pat, NULL, 10));
        same = memcmp(want, data, n) == 0;
        free(want);
    }
    printf("{\"ok\": %s, \"actor\": \"c\", %s\"bytes\": %zu, \"crc32\": %lu}\n", same ? "true" : "false",
           same ? "" : "\"error\": \"mismatch\", ", n, crc_of(data, n));
    free(data);
    return same ? 0 : 1;
}

/* The seed's program1 (write), program2 (modify), and a reader of both. */
static int cmd_fields(const char *cmd, const char *name) {
    shmb_segment *seg = NULL;
    if (strcmp(cmd, "fields-write") == 0) {
        TRY(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 1024, SHMB_PERM_DEFAULT, &seg));
        const shmb_region *r = shmb_segment_region(seg);
        shmb_result e = shmb_region_set_u8(r, 0, 128);
        if (!e) e = shmb_region_set_i32(r, 4, -1);
        if (!e) e = shmb_region_set_u32(r, 8, 1);
        if (!e) e = shmb_region_set_f32(r, 12, 2.0f);
        shmb_segment_free(seg);
        if (e) return fail(e);
        printf("{\"ok\": true, \"actor\": \"c\"}\n");
        return 0;
    }
    if (strcmp(cmd, "fields-modify") == 0) {
        TRY(shmb_segment_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, SHMB_PERM_DEFAULT, &seg));
        const shmb_region *r = shmb_segment_region(seg);
        shmb_result e = shmb_region_set_u8(r, 1, 127);
        if (!e) e = shmb_region_set_u8(r, 2, 255);
        if (!e) e = shmb_region_set_i32(r, 4, -128);
        if (!e) e = shmb_region_set_u32(r, 8, 6666);
        if (!e) e = shmb_region_set_f32(r, 12, 1.414f);
        shmb_segment_free(seg);
        if (e) return fail(e);
        printf("{\"ok\": true, \"actor\": \"c\"}\n");
        return 0;
    }
    TRY(shmb_segment_open(name, SHMB_OPEN_ONLY, SHMB_READ_ONLY, 0, SHMB_PERM_DEFAULT, &seg));
    const shmb_region *r = shmb_segment_region(seg);
    uint8_t b[4] = {0};
    int32_t i32 = 0;
    uint32_t u32 = 0;
    float f32 = 0;
    shmb_result e = SHMB_OK;
    for (int i = 0; i < 4 && !e; ++i) e = shmb_region_get_u8(r, (uint64_t)i, &b[i]);
    if (!e) e = shmb_region_get_i32(r, 4, &i32);
    if (!e) e = shmb_region_get_u32(r, 8, &u32);
    if (!e) e = shmb_region_get_f32(r, 12, &f32);
    shmb_segment_free(seg);
    if (e) return fail(e);
    printf("{\"ok\": true, \"actor\": \"c\", \"b0\": %u, \"b1\": %u, \"b2\": %u, \"b3\": %u, "
           "\"i32\": %d, \"u32\": %u, \"f32\": %.6f}\n",
           b[0], b[1], b[2], b[3], i32, u32, (double)f32);
    return 0;
}

static int cmd_open(int argc, char **argv, const char *name) {
    const char *m = arg(argc, argv, "mode");
    shmb_open_mode mode = strcmp(m, "create_only") == 0 ? SHMB_CREATE_ONLY
                        : strcmp(m, "open_only") == 0   ? SHMB_OPEN_ONLY
                                                        : SHMB_OPEN_OR_CREATE;
    uint64_t size = strtoull(arg(argc, argv, "size"), NULL, 10);
    shmb_segment *seg = NULL;
    TRY(shmb_segment_open(name, mode, SHMB_READ_WRITE, size, SHMB_PERM_DEFAULT, &seg));
    int created = shmb_object_created(shmb_segment_object(seg));
    size_t len = shmb_segment_size(seg);
    shmb_segment_free(seg);
    printf("{\"ok\": true, \"actor\": \"c\", \"created\": %s, \"size\": %zu}\n", created ? "true" : "false", len);
    return 0;
}

static int cmd_write_readonly(const char *name) {
    shmb_segment *seg = NULL;
    TRY(shmb_segment_open(name, SHMB_OPEN_ONLY, SHMB_READ_ONLY, 0, SHMB_PERM_DEFAULT, &seg));
    shmb_result r = shmb_region_write(shmb_segment_region(seg), 0, "X", 1);
    shmb_segment_free(seg);
    if (r == SHMB_OK) return fail_with("not_refused", "a read-only handle accepted a write");
    printf("{\"ok\": true, \"actor\": \"c\", \"refused\": true, \"error\": \"%s\"}\n", kind(r));
    return 0;
}

/* Channels (PROTOCOL.md, "Channels"): message i has length 1 + (i * 7919) % S, byte j is
 * (i * 31 + j) % 256, tag i. */
static size_t chan_len(uint64_t i, uint64_t size) { return 1 + (size_t)((i * 7919) % size); }

static int chan_ok(const shmb_channel_message *m, uint64_t size) {
    const unsigned char *p = m->data;
    if (m->len != chan_len(m->seq, size) || m->tag != (uint32_t)m->seq) return 0;
    for (size_t j = 0; j < m->len; ++j)
        if (p[j] != (unsigned char)((m->seq * 31 + j) % 256)) return 0;
    return 1;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Live readers holding a place. */
static size_t chan_readers(const shmb_channel_writer *w, shmb_result *err) {
    shmb_channel_status *st = NULL;
    shmb_channel_info info;
    shmb_channel_place p;
    size_t n = 0;
    *err = shmb_channel_writer_status(w, &st);
    if (*err != SHMB_OK) return 0;
    *err = shmb_channel_status_info(st, &info);
    for (size_t i = 0; *err == SHMB_OK && i < info.places; ++i) {
        *err = shmb_channel_status_place(st, i, &p);
        if (*err == SHMB_OK && p.active && p.alive) n++;
    }
    shmb_channel_status_free(st);
    return n;
}

static int cmd_chan_write(int argc, char **argv, const char *name) {
    const char *policy = arg(argc, argv, "policy");
    const char *wait_s = arg(argc, argv, "wait-readers");
    const char *die_s = arg(argc, argv, "die-after");
    const char *slots = arg(argc, argv, "slots"), *readers = arg(argc, argv, "readers");
    const char *count_s = arg(argc, argv, "count"), *size_s = arg(argc, argv, "size");
    if (!policy || !slots || !readers || !count_s || !size_s)
        return fail_with("usage", "chan-write needs --policy --slots --readers --count --size");
    uint64_t count = strtoull(count_s, NULL, 10), size = strtoull(size_s, NULL, 10);
    uint64_t wait_readers = wait_s ? strtoull(wait_s, NULL, 10) : 0;
    uint64_t stop = die_s ? strtoull(die_s, NULL, 10) : count;
    shmb_channel_options o;
    shmb_channel_options_init(&o);
    o.slots = (uint32_t)strtoul(slots, NULL, 10);
    o.readers = (uint32_t)strtoul(readers, NULL, 10);
    o.max_message = size;
    if (strcmp(policy, "block") == 0) o.policy = SHMB_POLICY_BLOCK;
    else if (strcmp(policy, "overwrite") == 0) o.policy = SHMB_POLICY_OVERWRITE;
    else return fail_with("usage", "--policy is block or overwrite");
    shmb_channel_writer *w = NULL;
    TRY(shmb_channel_writer_create(name, &o, &w));
    printf("{\"ready\": true}\n");
    fflush(stdout);
    shmb_result r = SHMB_OK;
    while (chan_readers(w, &r) < wait_readers && r == SHMB_OK) sleep_ms(1);
    for (uint64_t i = 0; r == SHMB_OK && i < stop; ++i) {
        shmb_channel_loan loan;
        size_t n = chan_len(i, size);
        r = shmb_channel_writer_loan(w, n, NULL, &loan); /* no time limit */
        if (r != SHMB_OK) break;
        unsigned char *p = loan.data;
        for (size_t j = 0; j < n; ++j) p[j] = (unsigned char)((i * 31 + j) % 256);
        r = shmb_channel_writer_publish(w, &loan, n, (uint32_t)i, NULL);
    }
    if (r != SHMB_OK) {
        int rc = fail(r);
        shmb_channel_writer_free(w);
        return rc;
    }
    if (die_s) _exit(0); /* as if killed: no close, no clean-up, no JSON line */
    r = shmb_channel_writer_close(w);
    shmb_channel_writer_free(w);
    if (r != SHMB_OK) return fail(r);
    printf("{\"ok\": true, \"actor\": \"c\", \"sent\": %llu}\n", (unsigned long long)count);
    return 0;
}

static int cmd_chan_read(int argc, char **argv, const char *name) {
    const char *die_s = arg(argc, argv, "die-after"), *hold_s = arg(argc, argv, "hold");
    uint64_t die = die_s ? strtoull(die_s, NULL, 10) : UINT64_MAX;
    size_t hold = hold_s ? (size_t)strtoull(hold_s, NULL, 10) : 0;
    shmb_wait open_wait;
    shmb_wait_init(&open_wait);
    open_wait.timeout_ms = 30000;
    shmb_channel_reader *rd = NULL;
    TRY(shmb_channel_reader_open(name, &open_wait, &rd));
    printf("{\"joined\": true}\n");
    fflush(stdout);
    uint64_t size = shmb_channel_reader_max_message(rd);
    shmb_channel_message *held = calloc(hold + 1, sizeof *held);
    size_t nheld = 0;
    uint64_t received = 0, lost = 0, first = 0, last = 0;
    const char *end = NULL;
    int rc = 0;
    if (!held) return fail_with("os", "out of memory");
    if (die == 0) _exit(0);
    for (;;) {
        shmb_channel_message m;
        shmb_result r = shmb_channel_reader_recv(rd, NULL, &m);
        if (r == SHMB_WRITER_CLOSED) { end = "closed"; break; }
        if (r == SHMB_PEER_GONE) { end = "writer_died"; break; }
        if (r != SHMB_OK) { rc = fail(r); break; }
        if (!chan_ok(&m, size)) {
            char why[160];
            snprintf(why, sizeof why, "message %llu: %zu bytes, tag %u, not the pattern's",
                     (unsigned long long)m.seq, m.len, m.tag);
            rc = fail_with("torn_message", why);
            break;
        }
        if (received == 0) first = m.seq;
        last = m.seq;
        received++;
        lost += m.lost;
        if (received == die) _exit(0); /* as if killed, holding this message */
        held[nheld++] = m;
        if (nheld > hold) { /* keep the last `hold`, release the oldest */
            shmb_channel_reader_release(rd, &held[0]);
            memmove(held, held + 1, (nheld - 1) * sizeof *held);
            nheld--;
        }
    }
    free(held);
    shmb_channel_reader_free(rd);
    if (rc != 0) return rc;
    char fl[64] = "null", la[64] = "null";
    if (received > 0) {
        snprintf(fl, sizeof fl, "%llu", (unsigned long long)first);
        snprintf(la, sizeof la, "%llu", (unsigned long long)last);
    }
    printf("{\"ok\": true, \"actor\": \"c\", \"received\": %llu, \"lost\": %llu, \"first\": %s, "
           "\"last\": %s, \"end\": \"%s\"}\n",
           (unsigned long long)received, (unsigned long long)lost, fl, la, end);
    return 0;
}

/* ---- typed arrays (PROTOCOL.md, "Arrays") ---------------------------------------------- */

static const shmb_dtype ALL_DTYPES[14] = {
    SHMB_DTYPE_BOOL,   SHMB_DTYPE_INT8,    SHMB_DTYPE_INT16,   SHMB_DTYPE_INT32,
    SHMB_DTYPE_INT64,  SHMB_DTYPE_UINT8,   SHMB_DTYPE_UINT16,  SHMB_DTYPE_UINT32,
    SHMB_DTYPE_UINT64, SHMB_DTYPE_FLOAT16, SHMB_DTYPE_FLOAT32, SHMB_DTYPE_FLOAT64,
    SHMB_DTYPE_COMPLEX64, SHMB_DTYPE_COMPLEX128,
};

static shmb_dtype dtype_of(const char *name, size_t len) {
    for (size_t i = 0; i < 14; i++) {
        const char *n = shmb_dtype_name(ALL_DTYPES[i]);
        if (strlen(n) == len && strncmp(n, name, len) == 0) return ALL_DTYPES[i];
    }
    return 0;
}

/* The dtypes of a comma list (at most 14); returns how many, 0 on an unknown one. */
static size_t dtypes_of(const char *list, shmb_dtype *out) {
    size_t n = 0;
    while (list && *list && n < 14) {
        const char *comma = strchr(list, ',');
        size_t len = comma ? (size_t)(comma - list) : strlen(list);
        if (!(out[n++] = dtype_of(list, len))) return 0;
        list = comma ? comma + 1 : NULL;
    }
    return n;
}

/* `--shape a,b,c` (`()` for 0-d); returns ndim, or SIZE_MAX when malformed. */
static size_t shape_of(const char *text, uint64_t *shape) {
    size_t n = 0;
    if (!text) return SIZE_MAX;
    if (strcmp(text, "()") == 0 || !*text) return 0;
    while (*text && n < 8) {
        char *end;
        shape[n++] = strtoull(text, &end, 10);
        if (end == text || (*end && *end != ',')) return SIZE_MAX;
        text = *end ? end + 1 : end;
    }
    return n;
}

/* The protocol's strides for order C, F or S (bytes); 0 on an unknown order. */
static int strides_of(const char *order, size_t ndim, const uint64_t *shape, size_t item,
                      int64_t *out) {
    int64_t step = (int64_t)item;
    if (!order) return 0;
    if (strcmp(order, "C") == 0 || strcmp(order, "S") == 0) {
        int s = order[0] == 'S';
        if (s) step = 2 * (int64_t)item;
        for (size_t d = ndim; d-- > 0;) {
            out[d] = step;
            step *= (int64_t)(shape[d] ? shape[d] : 1) * (s ? 2 : 1);
        }
        if (s && ndim > 0) out[0] = -out[0];
        return 1;
    }
    if (strcmp(order, "F") == 0) {
        for (size_t d = 0; d < ndim; d++) {
            out[d] = step;
            step *= (int64_t)(shape[d] ? shape[d] : 1);
        }
        return 1;
    }
    return 0;
}

/* The binary16 bits of a small non-negative integer (exact below 2048). */
static uint16_t half_of(unsigned v) {
    unsigned e = 0;
    if (v == 0) return 0;
    while ((v >> (e + 1)) != 0) e++;
    return (uint16_t)(((e + 15u) << 10) | ((v << (10 - e)) & 0x3ffu));
}

/* Element `k` (in C order) of the protocol's array: v = (k * 7 + 3 + seed) % 101 as the
 * element type (a bool: v % 3 == 0; a complex: v + (100 - v)i), little-endian like the host. */
static void element_of(shmb_dtype dt, uint64_t k, uint64_t seed, unsigned char *out) {
    const unsigned v = (unsigned)((k * 7 + 3 + seed) % 101), w = 100 - v;
    switch (dt) {
        case SHMB_DTYPE_BOOL: out[0] = v % 3 == 0; break;
        case SHMB_DTYPE_INT8: case SHMB_DTYPE_UINT8: out[0] = (unsigned char)v; break;
        case SHMB_DTYPE_INT16: case SHMB_DTYPE_UINT16: { uint16_t x = (uint16_t)v; memcpy(out, &x, 2); break; }
        case SHMB_DTYPE_INT32: case SHMB_DTYPE_UINT32: { uint32_t x = v; memcpy(out, &x, 4); break; }
        case SHMB_DTYPE_INT64: case SHMB_DTYPE_UINT64: { uint64_t x = v; memcpy(out, &x, 8); break; }
        case SHMB_DTYPE_FLOAT16: { uint16_t x = half_of(v); memcpy(out, &x, 2); break; }
        case SHMB_DTYPE_FLOAT32: { float x = (float)v; memcpy(out, &x, 4); break; }
        case SHMB_DTYPE_FLOAT64: { double x = v; memcpy(out, &x, 8); break; }
        case SHMB_DTYPE_COMPLEX64: { float x[2] = {(float)v, (float)w}; memcpy(out, x, 8); break; }
        case SHMB_DTYPE_COMPLEX128: { double x[2] = {v, w}; memcpy(out, x, 16); break; }
        default: break;
    }
}

/* Fill (`write`) or check the elements of `a` whose data area is at `data`, in C order;
 * returns the first element that differs (a bool: zero or not), or UINT64_MAX. */
static uint64_t walk_elements(const shmb_array_info *a, unsigned char *data, uint64_t seed,
                              int write) {
    unsigned char want[16];
    for (uint64_t k = 0; k < a->len; k++) {
        int64_t off = (int64_t)a->origin;
        uint64_t rest = k;
        for (size_t d = a->ndim; d-- > 0;) {
            off += (int64_t)(rest % a->shape[d]) * a->strides[d];
            rest /= a->shape[d];
        }
        element_of(a->dtype, k, seed, want);
        if (write) memcpy(data + off, want, a->itemsize);
        else if (a->dtype == SHMB_DTYPE_BOOL ? (data[off] != 0) != (want[0] != 0)
                                             : memcmp(data + off, want, a->itemsize) != 0)
            return k;
    }
    return UINT64_MAX;
}

static void print_layout(const shmb_array_info *a) {
    printf("\"dtype\": \"%s\", \"shape\": [", shmb_dtype_name(a->dtype));
    for (size_t d = 0; d < a->ndim; d++)
        printf("%s%llu", d ? ", " : "", (unsigned long long)a->shape[d]);
    printf("], \"strides\": [");
    for (size_t d = 0; d < a->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)a->strides[d]);
    printf("]");
}

/* 0 when `a` is dtype `dt`, `shape` and `strides`; else a failure line (exit code 1). */
static int layout_differs(const shmb_array_info *a, shmb_dtype dt, size_t ndim,
                          const uint64_t *shape, const int64_t *strides, uint64_t seq) {
    int bad = a->dtype != dt || a->ndim != ndim;
    for (size_t d = 0; !bad && d < ndim; d++)
        bad = a->shape[d] != shape[d] || a->strides[d] != strides[d];
    if (!bad) return 0;
    char why[160];
    snprintf(why, sizeof why, "message/segment %llu: got %s with %u dimensions, not the expected layout",
             (unsigned long long)seq, shmb_dtype_name(a->dtype), a->ndim);
    return fail_with("mismatch", why);
}

/* The array arguments: dtype, shape, strides. 0 on success, else the usage failure code. */
struct array_args {
    shmb_dtype dtypes[14];
    size_t ndtypes, ndim;
    uint64_t shape[8];
    const char *order;
    uint64_t seed;
};

static int array_args(int argc, char **argv, const char *dtype_key, struct array_args *a) {
    const char *seed = arg(argc, argv, "seed");
    a->ndtypes = dtypes_of(arg(argc, argv, dtype_key), a->dtypes);
    a->ndim = shape_of(arg(argc, argv, "shape"), a->shape);
    a->order = arg(argc, argv, "order");
    if (!a->order) a->order = "C";
    a->seed = seed ? strtoull(seed, NULL, 10) : 0;
    int64_t probe[8];
    if (!a->ndtypes || a->ndim == SIZE_MAX || !strides_of(a->order, a->ndim, a->shape, 1, probe))
        return fail_with("usage", "needs a known --dtype(s), --shape a,b,c or (), --order C|F|S");
    return 0;
}

static int cmd_array_write(int argc, char **argv, const char *name) {
    struct array_args a;
    int rc = array_args(argc, argv, "dtype", &a);
    if (rc) return rc;
    int64_t strides[8];
    strides_of(a.order, a.ndim, a.shape, shmb_dtype_itemsize(a.dtypes[0]), strides);
    const int given = strcmp(a.order, "S") == 0; /* C and F: the library's own strides */
    shmb_array_segment *seg = NULL;
    TRY(shmb_array_segment_create(name, a.dtypes[0], a.ndim, a.shape, given ? strides : NULL,
                                  strcmp(a.order, "F") == 0 ? SHMB_ORDER_F : SHMB_ORDER_C,
                                  SHMB_PERM_DEFAULT, &seg));
    shmb_array_info info;
    shmb_result r = shmb_array_segment_info(seg, &info);
    if (r == SHMB_OK) r = shmb_array_segment_begin_write(seg);
    if (r == SHMB_OK) {
        walk_elements(&info, info.data, a.seed, 1);
        r = shmb_array_segment_end_write(seg, true);
    }
    shmb_array_segment_free(seg);
    if (r != SHMB_OK) return fail(r);
    printf("{\"ok\": true, \"actor\": \"c\", ");
    print_layout(&info);
    printf(", \"elements\": %llu, \"bytes\": %zu, \"version\": 1}\n", (unsigned long long)info.len,
           info.data_len);
    return 0;
}

static int cmd_array_read(int argc, char **argv, const char *name) {
    struct array_args a;
    int rc = array_args(argc, argv, "dtype", &a);
    if (rc) return rc;
    int64_t strides[8];
    strides_of(a.order, a.ndim, a.shape, shmb_dtype_itemsize(a.dtypes[0]), strides);
    shmb_wait w;
    shmb_wait_init(&w);
    w.timeout_ms = 30000;
    shmb_array_segment *seg = NULL;
    TRY(shmb_array_segment_open(name, SHMB_READ_ONLY, &w, &seg));
    shmb_array_info info;
    shmb_result r = shmb_array_segment_info(seg, &info);
    if (r != SHMB_OK) {
        shmb_array_segment_free(seg);
        return fail(r);
    }
    if ((rc = layout_differs(&info, a.dtypes[0], a.ndim, a.shape, strides, 0))) {
        shmb_array_segment_free(seg);
        return rc;
    }
    unsigned char *buf = malloc(info.data_len + 1);
    size_t n = 0;
    uint64_t version = 0;
    r = buf ? shmb_array_segment_read(seg, buf, info.data_len + 1, &n, &version) : SHMB_OS;
    shmb_array_segment_free(seg);
    if (r != SHMB_OK) {
        free(buf);
        return fail(r);
    }
    uint64_t bad = walk_elements(&info, buf, a.seed, 0);
    free(buf);
    if (bad != UINT64_MAX) {
        char why[96];
        snprintf(why, sizeof why, "element %llu differs from the pattern", (unsigned long long)bad);
        return fail_with("mismatch", why);
    }
    printf("{\"ok\": true, \"actor\": \"c\", ");
    print_layout(&info);
    printf(", \"checked\": %llu, \"bytes\": %zu, \"version\": %llu}\n",
           (unsigned long long)info.len, info.data_len, (unsigned long long)version);
    return 0;
}

static int cmd_chan_array_write(int argc, char **argv, const char *name) {
    struct array_args a;
    int rc = array_args(argc, argv, "dtypes", &a);
    if (rc) return rc;
    const char *count_s = arg(argc, argv, "count"), *size_s = arg(argc, argv, "size");
    const char *wait_s = arg(argc, argv, "wait-readers");
    if (!count_s || !size_s) return fail_with("usage", "chan-array-write needs --count --size");
    uint64_t count = strtoull(count_s, NULL, 10);
    uint64_t wait_readers = wait_s ? strtoull(wait_s, NULL, 10) : 0;
    shmb_channel_options o;
    shmb_channel_options_init(&o);
    o.slots = 4;
    o.readers = 2;
    o.max_message = strtoull(size_s, NULL, 10);
    shmb_channel_writer *w = NULL;
    TRY(shmb_channel_writer_create(name, &o, &w));
    printf("{\"ready\": true}\n");
    fflush(stdout);
    shmb_result r = SHMB_OK;
    while (chan_readers(w, &r) < wait_readers && r == SHMB_OK) sleep_ms(1);
    for (uint64_t i = 0; r == SHMB_OK && i < count; ++i) {
        const shmb_dtype dt = a.dtypes[i % a.ndtypes];
        int64_t strides[8];
        strides_of(a.order, a.ndim, a.shape, shmb_dtype_itemsize(dt), strides);
        shmb_channel_loan loan;
        shmb_array_info info;
        r = shmb_channel_writer_loan_array(w, dt, a.ndim, a.shape,
                                           strcmp(a.order, "S") == 0 ? strides : NULL,
                                           strcmp(a.order, "F") == 0 ? SHMB_ORDER_F : SHMB_ORDER_C,
                                           NULL, &loan, &info);
        if (r != SHMB_OK) break;
        walk_elements(&info, info.data, i, 1);
        r = shmb_channel_writer_publish(w, &loan, loan.len, (uint32_t)i, NULL);
    }
    if (r == SHMB_OK) r = shmb_channel_writer_close(w);
    shmb_channel_writer_free(w);
    if (r != SHMB_OK) return fail(r);
    printf("{\"ok\": true, \"actor\": \"c\", \"sent\": %llu}\n", (unsigned long long)count);
    return 0;
}

static int cmd_chan_array_read(int argc, char **argv, const char *name) {
    struct array_args a;
    int rc = array_args(argc, argv, "dtypes", &a);
    if (rc) return rc;
    shmb_wait open_wait;
    shmb_wait_init(&open_wait);
    open_wait.timeout_ms = 30000;
    shmb_channel_reader *rd = NULL;
    TRY(shmb_channel_reader_open(name, &open_wait, &rd));
    printf("{\"joined\": true}\n");
    fflush(stdout);
    uint64_t received = 0;
    for (;;) {
        shmb_channel_message m;
        shmb_array_info info;
        shmb_result r = shmb_channel_reader_recv(rd, NULL, &m);
        if (r == SHMB_WRITER_CLOSED) break;
        if (r == SHMB_OK) r = shmb_channel_message_array(rd, &m, &info);
        if (r != SHMB_OK) {
            rc = fail(r);
            break;
        }
        const shmb_dtype dt = a.dtypes[m.seq % a.ndtypes];
        int64_t strides[8];
        strides_of(a.order, a.ndim, a.shape, shmb_dtype_itemsize(dt), strides);
        if ((rc = layout_differs(&info, dt, a.ndim, a.shape, strides, m.seq))) break;
        uint64_t bad = walk_elements(&info, info.data, m.seq, 0);
        if (bad != UINT64_MAX) {
            char why[96];
            snprintf(why, sizeof why, "message %llu: element %llu differs from the pattern",
                     (unsigned long long)m.seq, (unsigned long long)bad);
            rc = fail_with("mismatch", why);
            break;
        }
        shmb_channel_reader_release(rd, &m);
        received++;
    }
    shmb_channel_reader_free(rd);
    if (rc != 0) return rc;
    printf("{\"ok\": true, \"actor\": \"c\", \"received\": %llu}\n", (unsigned long long)received);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return fail_with("usage", "missing command");
    const char *cmd = argv[1];
    const char *name = arg(argc, argv, "name");
    if (!name) return fail_with("usage", "missing --name");
    if (strcmp(cmd, "write") == 0) return cmd_write(argc, argv, name);
    if (strcmp(cmd, "read") == 0) return cmd_read(argc, argv, name);
    if (strncmp(cmd, "fields-", 7) == 0) return cmd_fields(cmd, name);
    if (strcmp(cmd, "open") == 0) return cmd_open(argc, argv, name);
    if (strcmp(cmd, "write-readonly") == 0) return cmd_write_readonly(name);
    if (strcmp(cmd, "chan-write") == 0) return cmd_chan_write(argc, argv, name);
    if (strcmp(cmd, "chan-read") == 0) return cmd_chan_read(argc, argv, name);
    if (strcmp(cmd, "array-write") == 0) return cmd_array_write(argc, argv, name);
    if (strcmp(cmd, "array-read") == 0) return cmd_array_read(argc, argv, name);
    if (strcmp(cmd, "chan-array-write") == 0) return cmd_chan_array_write(argc, argv, name);
    if (strcmp(cmd, "chan-array-read") == 0) return cmd_chan_array_read(argc, argv, name);
    return fail_with("usage", "unknown command");
}
