/* Tests of the C ABI's file transfer and streams: shmb_send_file / shmb_recv_file one-shot and
 * streamed across fork(), the report fields, the progress callback and its stop request,
 * every NULL argument, bad inputs (a directory, a missing file, a taken name, an unwritable
 * target directory, no sender, a corrupted payload, a sender that gave up), and the stream
 * writer/reader handles. Compiled with -Wall -Wextra -Wpedantic -Werror. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define SUITE "tr"

static char dir[] = "/tmp/shmb_t_tr_XXXXXX";

/* zlib's CRC-32, bit by bit: slow and obviously right. */
static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static unsigned char *make_data(size_t n, unsigned seed) {
    unsigned char *p = malloc(n ? n : 1);
    size_t i;
    uint32_t x = seed * 2654435761u + 1;
    if (!p) exit(2);
    for (i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 16);
    }
    return p;
}

static void path_in(char *out, size_t len, const char *file) {
    snprintf(out, len, "%s/%s", dir, file);
}

static void write_file(const char *path, const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* Whether the file at `path` holds exactly `data`. */
static int file_equals(const char *path, const unsigned char *data, size_t n) {
    FILE *f = fopen(path, "rb");
    unsigned char *got;
    size_t r;
    int c, same;
    if (!f) return 0;
    got = malloc(n + 1);
    if (!got) exit(2);
    r = fread(got, 1, n, f);
    c = fgetc(f);
    fclose(f);
    same = r == n && c == EOF && memcmp(got, data, n) == 0;
    free(got);
    return same;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int shm_exists(const char *name) {
    char p[256];
    snprintf(p, sizeof p, "/dev/shm/%s", name);
    return exists(p);
}

/* The number of entries in the test directory (no temporary file may be left behind). */
static int dir_entries(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static int wait_child(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

struct progress_state {
    int calls;
    uint64_t last_done, last_total;
    int stop_after; /* ask to stop on this call (0: never) */
};

static int on_progress(uint64_t done, uint64_t total, void *user) {
    struct progress_state *s = user;
    s->calls++;
    if (done < s->last_done) s->last_done = UINT64_MAX; /* must not go backwards */
    else s->last_done = done;
    s->last_total = total;
    return s->stop_after != 0 && s->calls >= s->stop_after;
}

static void test_defaults(void) {
    shmb_send_options so;
    shmb_recv_options ro;
    memset(&so, 0xAB, sizeof so);
    memset(&ro, 0xAB, sizeof ro);
    shmb_send_options_init(&so);
    shmb_recv_options_init(&ro);
    CHECK(so.mode == SHMB_TRANSFER_AUTO && so.segment_size == 0 && so.permissions == 0);
    CHECK(so.timeout_ms == SHMB_TIMEOUT_FOREVER && so.progress == NULL && so.progress_user == NULL);
    CHECK(ro.timeout_ms == SHMB_TIMEOUT_FOREVER && !ro.keep && !ro.fsync && ro.progress == NULL);
    shmb_send_options_init(NULL);
    shmb_recv_options_init(NULL);
}

/* One-shot: the parent sends (and returns at once), a forked child receives. */
static void test_one_shot_fork(void) {
    const char *name = h_name(SUITE, "one");
    const size_t n = (1u << 20) + 7;
    unsigned char *data = make_data(n, 1);
    char src[256], dst[256];
    shmb_send_options so;
    shmb_transfer_report rep;
    struct progress_state ps = {0, 0, 0, 0};
    shmb_header_info hi;
    shmb_framed *f = NULL;
    pid_t pid;

    path_in(src, sizeof src, "one.bin");
    path_in(dst, sizeof dst, "one.out");
    write_file(src, data, n);
    shmb_send_options_init(&so);
    so.mode = SHMB_TRANSFER_ONE_SHOT;
    so.permissions = 0640;
    so.progress = on_progress;
    so.progress_user = &ps;
    memset(&rep, 0, sizeof rep);
    CHECK_OK(shmb_send_file(src, name, &so, &rep));
    CHECK(rep.bytes == n);
    CHECK(rep.crc32 == crc32_of(data, n));
    CHECK(rep.mode == SHMB_TRANSFER_ONE_SHOT);
    CHECK(rep.segment_size >= n + 128);
    CHECK(rep.elapsed_ns > 0);
    CHECK(ps.calls >= 4 && ps.last_done == n && ps.last_total == n);
    /* The published segment waits for the receiver: framed, closed, checksummed. */
    CHECK_OK(shmb_framed_open(name, SHMB_READ_ONLY, &f));
    CHECK_OK(shmb_framed_header(f, &hi));
    CHECK(hi.payload_len == n && hi.has_checksum && hi.checksum == rep.crc32);
    CHECK((hi.flags & SHMB_FLAG_WRITER_CLOSED) && (hi.flags & SHMB_FLAG_PUBLISHED));
    shmb_framed_free(f);

    pid = fork();
    if (pid == 0) {
        shmb_recv_options ro;
        shmb_transfer_report rr;
        shmb_recv_options_init(&ro);
        ro.timeout_ms = 10000;
        ro.fsync = true;
        if (shmb_recv_file(name, dst, &ro, &rr) != SHMB_OK) _exit(10);
        if (rr.bytes != n || rr.crc32 != crc32_of(data, n) || rr.mode != SHMB_TRANSFER_ONE_SHOT)
            _exit(11);
        _exit(0);
    }
    CHECK(wait_child(pid) == 0);
    CHECK(file_equals(dst, data, n));
    CHECK(!shm_exists(name)); /* the receiver removed it */
    remove(src);
    remove(dst);
    free(data);
}

/* Streaming through a ring much smaller than the file: a forked child sends (it waits for the
 * receiver), the parent receives with a progress callback. Then auto mode picks streaming. */
static void test_stream_fork(void) {
    const char *name = h_name(SUITE, "st");
    const char *name2 = h_name(SUITE, "auto");
    const size_t n = 3u * (1u << 20) + 12345;
    const uint64_t seg = 384 + 64 * 1024;
    unsigned char *data = make_data(n, 2);
    char src[256], dst[256];
    shmb_recv_options ro;
    shmb_transfer_report rep;
    struct progress_state ps = {0, 0, 0, 0};
    pid_t pid;
    int round;

    path_in(src, sizeof src, "st.bin");
    path_in(dst, sizeof dst, "st.out");
    write_file(src, data, n);
    for (round = 0; round < 2; round++) {
        const char *nm = round == 0 ? name : name2;
        pid = fork();
        if (pid == 0) {
            shmb_send_options so;
            shmb_transfer_report sr;
            shmb_send_options_init(&so);
            so.mode = round == 0 ? SHMB_TRANSFER_STREAM : SHMB_TRANSFER_AUTO;
            so.segment_size = seg;
            so.timeout_ms = 10000;
            if (shmb_send_file(src, nm, &so, &sr) != SHMB_OK) _exit(10);
            if (sr.bytes != n || sr.mode != SHMB_TRANSFER_STREAM || sr.segment_size != seg ||
                sr.crc32 != crc32_of(data, n))
                _exit(11);
            _exit(0);
        }
        shmb_recv_options_init(&ro);
        ro.timeout_ms = 10000;
        ro.progress = on_progress;
        ro.progress_user = &ps;
        ps.calls = 0;
        ps.last_done = 0;
        memset(&rep, 0, sizeof rep);
        CHECK_OK(shmb_recv_file(nm, dst, &ro, &rep));
        CHECK(wait_child(pid) == 0);
        CHECK(rep.bytes == n && rep.crc32 == crc32_of(data, n));
        CHECK(rep.mode == SHMB_TRANSFER_STREAM && rep.segment_size == seg);
        CHECK(ps.calls >= 3 && ps.last_done == n && ps.last_total == n);
        CHECK(file_equals(dst, data, n));
        CHECK(!shm_exists(nm));
        remove(dst);
    }
    remove(src);
    free(data);
}

/* The progress callback's return value stops a transfer: SHMB_ABORTED, nothing left. */
static void test_progress_stop(void) {
    const char *name = h_name(SUITE, "stop");
    const size_t n = 2u << 20;
    unsigned char *data = make_data(n, 3);
    char src[256], dst[256];
    shmb_send_options so;
    shmb_recv_options ro;
    shmb_transfer_report rep;
    struct progress_state ps = {0, 0, 0, 2};
    int before;

    path_in(src, sizeof src, "stop.bin");
    path_in(dst, sizeof dst, "stop.out");
    write_file(src, data, n);
    shmb_send_options_init(&so);
    so.progress = on_progress;
    so.progress_user = &ps;
    memset(&rep, 0x5A, sizeof rep);
    CHECK_RC(shmb_send_file(src, name, &so, &rep), SHMB_ABORTED);
    CHECK(ps.calls == 2);
    CHECK(rep.bytes == 0x5A5A5A5A5A5A5A5Aull); /* outputs only on success */
    CHECK(!shm_exists(name));

    /* The receiver stops: the target never appears, no temporary file is left, and the
     * one-shot segment stays for another try. */
    CHECK_OK(shmb_send_file(src, name, NULL, NULL));
    before = dir_entries();
    shmb_recv_options_init(&ro);
    ro.timeout_ms = 5000;
    ro.progress = on_progress;
    ro.progress_user = &ps;
    ps.calls = 0;
    ps.stop_after = 1;
    CHECK_RC(shmb_recv_file(name, dst, &ro, NULL), SHMB_ABORTED);
    CHECK(!exists(dst));
    CHECK(dir_entries() == before);
    CHECK(shm_exists(name));
    ro.progress = NULL;
    CHECK_OK(shmb_recv_file(name, dst, &ro, NULL));
    CHECK(file_equals(dst, data, n));
    CHECK(!shm_exists(name));
    remove(src);
    remove(dst);
    free(data);
}

static void test_null_arguments(void) {
    const char *name = h_name(SUITE, "null");
    char src[256], dst[256];
    shmb_transfer_report rep;
    shmb_stream_writer *w = NULL;
    shmb_stream_reader *r = NULL;
    char buf[8];
    size_t n = 0;
    uint32_t crc = 0;

    path_in(src, sizeof src, "null.bin");
    path_in(dst, sizeof dst, "null.out");
    write_file(src, (const unsigned char *)"hello", 5);
    CHECK_RC(shmb_send_file(NULL, name, NULL, &rep), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_send_file(src, NULL, NULL, &rep), SHMB_NULL_ARGUMENT);
    CHECK(!shm_exists(name));
    CHECK_RC(shmb_recv_file(NULL, dst, NULL, &rep), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_recv_file(name, NULL, NULL, &rep), SHMB_NULL_ARGUMENT);
    /* NULL options are the defaults, a NULL report is not wanted. */
    CHECK_OK(shmb_send_file(src, name, NULL, NULL));
    CHECK_OK(shmb_recv_file(name, dst, NULL, NULL));
    CHECK(file_equals(dst, (const unsigned char *)"hello", 5));

    CHECK_RC(shmb_stream_writer_create(NULL, 64, SHMB_UNKNOWN_TOTAL, 0, &w), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_stream_writer_create(name, 64, SHMB_UNKNOWN_TOTAL, 0, NULL), SHMB_NULL_ARGUMENT);
    CHECK(!shm_exists(name));
    CHECK_RC(shmb_stream_writer_write(NULL, "x", 1, WAIT_MS(0)), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_stream_writer_finish(NULL, WAIT_MS(0), &crc), SHMB_NULL_ARGUMENT);
    CHECK(shmb_stream_writer_written(NULL) == 0);
    CHECK(shmb_stream_writer_name(NULL) == NULL);
    shmb_stream_writer_abort(NULL);
    shmb_stream_writer_free(NULL);
    CHECK_RC(shmb_stream_reader_open(NULL, WAIT_MS(0), &r), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_stream_reader_open(name, WAIT_MS(0), NULL), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_stream_reader_read(NULL, buf, sizeof buf, WAIT_MS(0), &n), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_stream_reader_finish(NULL, &crc), SHMB_NULL_ARGUMENT);
    CHECK(shmb_stream_reader_consumed(NULL) == 0);
    CHECK(shmb_stream_reader_total(NULL) == SHMB_UNKNOWN_TOTAL);
    CHECK(shmb_stream_reader_name(NULL) == NULL);
    shmb_stream_reader_abort(NULL);
    shmb_stream_reader_free(NULL);

    CHECK_OK(shmb_stream_writer_create(name, 64, SHMB_UNKNOWN_TOTAL, 0, &w));
    CHECK_RC(shmb_stream_writer_write(w, NULL, 1, WAIT_MS(0)), SHMB_NULL_ARGUMENT);
    CHECK_OK(shmb_stream_writer_write(w, NULL, 0, WAIT_MS(0)));
    CHECK_OK(shmb_stream_reader_open(name, WAIT_MS(0), &r));
    CHECK_RC(shmb_stream_reader_read(r, NULL, 1, WAIT_MS(0), &n), SHMB_NULL_ARGUMENT);
    CHECK_RC(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(0), NULL), SHMB_NULL_ARGUMENT);
    shmb_stream_reader_free(r);
    shmb_stream_writer_free(w);
    CHECK(!shm_exists(name)); /* freeing an unfinished writer aborts and removes the stream */
    remove(src);
    remove(dst);
}

/* Receive as an unprivileged user (a child that dropped root, when run as root) into a
 * directory it cannot write. */
static shmb_result recv_into_readonly_dir(const char *name, const char *target) {
    shmb_recv_options ro;
    shmb_recv_options_init(&ro);
    ro.timeout_ms = 0;
    if (geteuid() != 0) return shmb_recv_file(name, target, &ro, NULL);
    {
        pid_t pid = fork();
        int rc;
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(99);
            _exit((int)shmb_recv_file(name, target, &ro, NULL));
        }
        rc = wait_child(pid);
        return rc == 99 ? SHMB_PERMISSION_DENIED : (shmb_result)rc;
    }
}

static void test_bad_inputs(void) {
    const char *name = h_name(SUITE, "bad");
    const char *raw = h_name(SUITE, "raw");
    char src[256], dst[256], ro_dir[256], ro_target[300];
    shmb_send_options so;
    shmb_recv_options ro;
    shmb_framed *f = NULL;
    shmb_object *obj = NULL;
    shmb_region *reg = NULL;
    shmb_segment *seg = NULL;
    int before;

    path_in(src, sizeof src, "bad.bin");
    path_in(dst, sizeof dst, "bad.out");
    write_file(src, (const unsigned char *)"some bytes", 10);

    /* Sending: a directory, a missing file, an empty path, a bad name, an unknown mode. */
    CHECK_RC(shmb_send_file(dir, name, NULL, NULL), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_send_file("/nonexistent/shmb_t_nothing", name, NULL, NULL), SHMB_NOT_FOUND);
    CHECK(shmb_last_error_errno() == ENOENT);
    CHECK_RC(shmb_send_file("", name, NULL, NULL), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_send_file(src, "a/b", NULL, NULL), SHMB_INVALID_NAME);
    CHECK_RC(shmb_send_file(src, "", NULL, NULL), SHMB_INVALID_NAME);
    shmb_send_options_init(&so);
    so.mode = 7;
    CHECK_RC(shmb_send_file(src, name, &so, NULL), SHMB_INVALID_ARGUMENT);
    CHECK(!shm_exists(name));
    /* A taken name: the existing segment is left alone. */
    CHECK_OK(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 4096, 0, &seg));
    CHECK_RC(shmb_send_file(src, name, NULL, NULL), SHMB_ALREADY_EXISTS);
    CHECK(shmb_last_error_errno() == EEXIST);
    CHECK(shm_exists(name));
    shmb_segment_free(seg);
    CHECK(shmb_remove(name) == SHMB_OK);
    /* A stream segment no bigger than its header; a stream nobody receives. */
    so.mode = SHMB_TRANSFER_STREAM;
    so.segment_size = 384;
    CHECK_RC(shmb_send_file(src, name, &so, NULL), SHMB_INVALID_SIZE);
    so.segment_size = 4096;
    so.timeout_ms = 200;
    CHECK_RC(shmb_send_file(src, name, &so, NULL), SHMB_TIMEOUT);
    CHECK(!shm_exists(name));

    /* Receiving: nobody sends (a zero and a short timeout), a bad name, a directory target. */
    shmb_recv_options_init(&ro);
    ro.timeout_ms = 0;
    CHECK_RC(shmb_recv_file(name, dst, &ro, NULL), SHMB_TIMEOUT);
    ro.timeout_ms = 150;
    CHECK_RC(shmb_recv_file(name, dst, &ro, NULL), SHMB_TIMEOUT);
    CHECK_RC(shmb_recv_file("a/b", dst, &ro, NULL), SHMB_INVALID_NAME);
    CHECK_RC(shmb_recv_file(name, dir, &ro, NULL), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_recv_file(name, "", &ro, NULL), SHMB_INVALID_ARGUMENT);
    CHECK(!exists(dst));

    /* A target directory that cannot be written: refused before anything is consumed. */
    CHECK_OK(shmb_send_file(src, name, NULL, NULL));
    path_in(ro_dir, sizeof ro_dir, "ro");
    snprintf(ro_target, sizeof ro_target, "%s/out.bin", ro_dir);
    CHECK(mkdir(ro_dir, 0555) == 0);
    CHECK(chmod(ro_dir, 0555) == 0);
    CHECK(recv_into_readonly_dir(name, ro_target) == SHMB_PERMISSION_DENIED);
    CHECK(!exists(ro_target));
    CHECK(shm_exists(name));
    rmdir(ro_dir);
    CHECK(shmb_remove(name) == SHMB_OK);

    /* Not a framed segment (a zero-filled one would look like a sender still creating it). */
    CHECK_OK(shmb_segment_open(raw, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 4096, 0, &seg));
    CHECK_OK(shmb_region_write(shmb_segment_region(seg), 0, "raw data", 8));
    CHECK_RC(shmb_recv_file(raw, dst, &ro, NULL), SHMB_BAD_MAGIC);
    shmb_segment_free(seg);

    /* A payload corrupted after it was published: the checksum catches it; no output. */
    CHECK_OK(shmb_send_file(src, name, NULL, NULL));
    CHECK_OK(shmb_object_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, &obj));
    CHECK_OK(shmb_object_map(obj, SHMB_READ_WRITE, 0, 0, &reg));
    ((unsigned char *)shmb_region_data(reg))[128 + 3] ^= 0x40;
    shmb_region_free(reg);
    shmb_object_free(obj);
    before = dir_entries();
    CHECK_RC(shmb_recv_file(name, dst, &ro, NULL), SHMB_CHECKSUM_MISMATCH);
    CHECK(!exists(dst) && dir_entries() == before);
    CHECK(shmb_remove(name) == SHMB_OK);

    /* A sender that closed its segment without publishing (it failed). */
    CHECK_OK(shmb_framed_create(name, 100, 0, &f));
    CHECK_OK(shmb_framed_close_writer(f));
    CHECK_RC(shmb_recv_file(name, dst, &ro, NULL), SHMB_WRITER_CLOSED);
    shmb_framed_free(f);
    CHECK(!exists(dst));
    CHECK(shmb_remove(name) == SHMB_OK);
    remove(src);
}

/* The stream handles in one process (everything fits in the ring), then across fork(). */
static void test_stream_handles(void) {
    const char *name = h_name(SUITE, "sh");
    shmb_stream_writer *w = NULL, *w2 = NULL;
    shmb_stream_reader *r = NULL, *r2 = NULL;
    char buf[64];
    size_t n = 99;
    uint32_t wcrc = 0, rcrc = 0;

    CHECK_RC(shmb_stream_writer_create(name, 0, SHMB_UNKNOWN_TOTAL, 0, &w), SHMB_INVALID_SIZE);
    CHECK(w == NULL);
    CHECK_OK(shmb_stream_writer_create(name, 4096, 11, 0, &w));
    CHECK(strcmp(shmb_stream_writer_name(w), name) == 0);
    CHECK_RC(shmb_stream_writer_create(name, 4096, 11, 0, &w2), SHMB_ALREADY_EXISTS);
    CHECK(w2 == NULL);
    CHECK_OK(shmb_stream_writer_write(w, "hello ", 6, WAIT_MS(0)));
    CHECK(shmb_stream_writer_written(w) == 6);
    CHECK_RC(shmb_stream_writer_write(w, "world!", 6, WAIT_MS(0)), SHMB_INVALID_ARGUMENT); /* > total */
    CHECK_OK(shmb_stream_reader_open(name, WAIT_MS(0), &r));
    CHECK(strcmp(shmb_stream_reader_name(r), name) == 0);
    CHECK(shmb_stream_reader_total(r) == 11);
    CHECK_RC(shmb_stream_reader_open(name, WAIT_MS(0), &r2), SHMB_ALREADY_EXISTS);
    CHECK_OK(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(0), &n));
    CHECK(n == 6 && memcmp(buf, "hello ", 6) == 0);
    CHECK_RC(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(50), &n), SHMB_TIMEOUT);
    CHECK_RC(shmb_stream_reader_finish(r, &rcrc), SHMB_INVALID_ARGUMENT); /* not at the end */
    CHECK_OK(shmb_stream_writer_write(w, "world", 5, WAIT_MS(0)));
    CHECK_OK(shmb_stream_reader_read(r, buf, 3, WAIT_MS(0), &n));
    CHECK(n == 3 && memcmp(buf, "wor", 3) == 0);
    CHECK_OK(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(0), &n));
    CHECK(n == 2 && memcmp(buf, "ld", 2) == 0);
    CHECK(shmb_stream_reader_consumed(r) == 11);
    /* The writer ends the stream; its finish times out while the reader has not confirmed, and
     * can be called again; the reader sees the verified end, then confirms. */
    CHECK_RC(shmb_stream_writer_finish(w, WAIT_MS(50), &wcrc), SHMB_TIMEOUT); /* reader not done yet */
    CHECK_RC(shmb_stream_writer_write(w, "x", 1, WAIT_MS(0)), SHMB_CLOSED);
    CHECK_RC(shmb_stream_writer_finish(w, WAIT_MS(0), &wcrc), SHMB_TIMEOUT);
    CHECK(shm_exists(name));
    CHECK_OK(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(0), &n));
    CHECK(n == 0);
    CHECK_OK(shmb_stream_reader_finish(r, &rcrc));
    CHECK(rcrc == crc32_of((const unsigned char *)"hello world", 11));
    CHECK_OK(shmb_stream_writer_finish(w, WAIT_MS(1000), &wcrc));
    CHECK(wcrc == rcrc);
    CHECK_RC(shmb_stream_writer_finish(w, WAIT_MS(0), &wcrc), SHMB_CLOSED);
    CHECK(!shm_exists(name)); /* a finished stream's name is removed */
    shmb_stream_writer_free(w);
    /* Waiting for a stream that does not exist runs out; a negative timeout is refused. */
    CHECK_RC(shmb_stream_reader_open(name, WAIT_MS(30), &r2), SHMB_TIMEOUT);
    CHECK_RC(shmb_stream_reader_open(name, WAIT_MS(-5), &r2), SHMB_INVALID_ARGUMENT);
    CHECK(r2 == NULL);

    /* Again, across processes: publish the end, read to it, finish both. */
    CHECK_OK(shmb_stream_writer_create(name, 4096, SHMB_UNKNOWN_TOTAL, 0600, &w));
    shmb_stream_reader_free(r);
    r = NULL;
    CHECK_OK(shmb_stream_reader_open(name, WAIT_MS(0), &r));
    CHECK(shmb_stream_reader_total(r) == SHMB_UNKNOWN_TOTAL);
    CHECK_OK(shmb_stream_writer_write(w, "hello world", 11, WAIT_MS(0)));
    n = 99;
    CHECK_OK(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(1000), &n));
    CHECK(n == 11);
    {
        pid_t pid = fork();
        if (pid == 0) { /* the writer's finish waits for the reader, so run it elsewhere */
            uint32_t c = 0;
            _exit(shmb_stream_writer_finish(w, WAIT_MS(10000), &c) == SHMB_OK &&
                          c == crc32_of((const unsigned char *)"hello world", 11)
                      ? 0
                      : 1);
        }
        CHECK_OK(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(10000), &n));
        CHECK(n == 0);
        CHECK(shmb_stream_reader_total(r) == 11);
        CHECK_OK(shmb_stream_reader_finish(r, &rcrc));
        CHECK(rcrc == crc32_of((const unsigned char *)"hello world", 11));
        CHECK_RC(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(0), &n), SHMB_CLOSED);
        CHECK(wait_child(pid) == 0);
    }
    shmb_stream_writer_abort(w); /* this process's copy: finished elsewhere, abort is harmless */
    shmb_stream_writer_free(w);
    shmb_stream_reader_free(r);
    CHECK(!shm_exists(name));

    /* An aborted writer: the reader fails at once. A reader that gives up: the writer fails. */
    CHECK_OK(shmb_stream_writer_create(name, 16, SHMB_UNKNOWN_TOTAL, 0, &w));
    CHECK_OK(shmb_stream_reader_open(name, WAIT_MS(0), &r));
    shmb_stream_writer_abort(w);
    CHECK_RC(shmb_stream_writer_write(w, "x", 1, WAIT_MS(0)), SHMB_CLOSED);
    CHECK_RC(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(1000), &n), SHMB_PEER_GONE);
    CHECK(!shm_exists(name)); /* abort removes the name */
    shmb_stream_writer_free(w);
    shmb_stream_reader_free(r);
    CHECK_OK(shmb_stream_writer_create(name, 16, SHMB_UNKNOWN_TOTAL, 0, &w));
    CHECK_OK(shmb_stream_reader_open(name, WAIT_MS(0), &r));
    shmb_stream_reader_abort(r);
    CHECK_RC(shmb_stream_writer_write(w, "0123456789abcdefXYZ", 19, WAIT_MS(1000)), SHMB_PEER_GONE);
    CHECK_RC(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(0), &n), SHMB_CLOSED);
    shmb_stream_writer_free(w);
    shmb_stream_reader_free(r);
    CHECK(!shm_exists(name)); /* the failed stream's writer removed it */
}

/* A stream larger than its ring through the handles: a child creates the stream and writes
 * 2 MiB in odd pieces (telling the parent through a pipe once it exists); the parent reads. */
static void test_stream_handles_fork(void) {
    const char *name = h_name(SUITE, "shf");
    const size_t n = 2u << 20;
    unsigned char *data = make_data(n, 4), *got = malloc(n + 1);
    shmb_stream_reader *r = NULL;
    size_t have = 0;
    uint32_t crc = 0;
    int fds[2];
    char ready = 0;
    pid_t pid;

    if (!got || pipe(fds) != 0) exit(2);
    pid = fork();
    if (pid == 0) {
        shmb_stream_writer *w = NULL;
        size_t off = 0, piece = 1;
        uint32_t c = 0;
        int ok;
        close(fds[0]);
        if (shmb_stream_writer_create(name, 10000, n, 0, &w) != SHMB_OK) _exit(9);
        if (write(fds[1], "r", 1) != 1) _exit(9);
        while (off < n) {
            size_t m = piece < n - off ? piece : n - off;
            if (shmb_stream_writer_write(w, data + off, m, WAIT_MS(10000)) != SHMB_OK) _exit(10);
            off += m;
            piece = piece * 3 + 1;
            if (piece > 70000) piece = 7;
        }
        ok = shmb_stream_writer_finish(w, WAIT_MS(10000), &c) == SHMB_OK && c == crc32_of(data, n);
        shmb_stream_writer_free(w);
        (void)shmb_remove(name);
        _exit(ok ? 0 : 11);
    }
    close(fds[1]);
    CHECK(read(fds[0], &ready, 1) == 1 && ready == 'r');
    close(fds[0]);
    CHECK_OK(shmb_stream_reader_open(name, WAIT_MS(0), &r));
    CHECK(shmb_stream_reader_total(r) == n);
    for (;;) {
        size_t m = 0;
        if (shmb_stream_reader_read(r, got + have, n + 1 - have, WAIT_MS(10000), &m) != SHMB_OK) {
            CHECK(0);
            break;
        }
        if (m == 0) break;
        have += m;
    }
    CHECK(have == n && memcmp(got, data, n) == 0);
    CHECK_OK(shmb_stream_reader_finish(r, &crc));
    CHECK(crc == crc32_of(data, n));
    shmb_stream_reader_free(r);
    CHECK(wait_child(pid) == 0);
    CHECK(!shm_exists(name));
    free(data);
    free(got);
}

int main(void) {
    h_init();
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_defaults();
    test_one_shot_fork();
    test_stream_fork();
    test_progress_stop();
    test_null_arguments();
    test_bad_inputs();
    test_stream_handles();
    test_stream_handles_fork();
    CHECK(dir_entries() == 0);
    rmdir(dir);
    return h_report("test_transfer");
}
