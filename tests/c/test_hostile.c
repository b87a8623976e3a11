/* Hostile and shrinking segments through the C ABI (issue 10): a segment shrunk by another
 * process while shmb_region_read copies it, or mid-receive (at a chosen moment: from the
 * progress callback), a FIFO and a short segment under the awaited name, another user's
 * segment and stream (root gives them to nobody with chown), a FIFO as the target, a source
 * whose metadata size is 0, a zero-copy pointer past a shrunk end (the SIGBUS guard). Every
 * case must be an error code with a message, never a signal or a hang. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#define SUITE "chost"

static char h_dir[256];

static void shm_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "/dev/shm/%s", name);
}

static void make_file(const char *path, size_t len) {
    FILE *f = fopen(path, "wb");
    size_t i;
    CHECK(f != NULL);
    if (!f) return;
    for (i = 0; i < len; i++) fputc((int)((i * 31) % 251), f);
    fclose(f);
}

static void shrink(const char *name, off_t to) {
    char p[256];
    int fd;
    shm_path(p, sizeof p, name);
    fd = open(p, O_WRONLY);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK(ftruncate(fd, to) == 0);
        close(fd);
    }
}

/* A region read racing another process's ftruncate: the read fails with SHMB_TRUNCATED once
 * the shrink lands, and the process never gets SIGBUS. */
static void test_region_read_racing_a_shrink(void) {
    const char *name = h_name(SUITE, "race");
    const size_t len = 32u << 20;
    shmb_segment *seg = NULL;
    char *buf = malloc(len);
    pid_t child;
    int status = 0, i, failed = 0;
    CHECK(buf != NULL);
    CHECK_OK(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, len, 0, &seg));
    child = fork();
    if (child == 0) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        shrink(name, 4096);
        _exit(0);
    }
    for (i = 0; i < 100000 && !failed; i++) {
        shmb_result rc = shmb_region_read(shmb_segment_region(seg), 0, buf, len);
        if (rc != SHMB_OK) {
            failed = 1;
            CHECK_RC(rc, SHMB_TRUNCATED);
            CHECK(strstr(h_last_message(), name) != NULL);
        }
    }
    CHECK(failed);
    CHECK(waitpid(child, &status, 0) == child);
    /* Writes never re-grow the shrunk segment. */
    CHECK_RC(shmb_region_write(shmb_segment_region(seg), len - 10, "0123456789", 10),
             SHMB_TRUNCATED);
    shmb_segment_free(seg);
    free(buf);
}

/* The SIGBUS guard: a zero-copy read through shmb_region_data() of a page past a shrunk
 * end reads 0 instead of killing the process, and shmb_region_check() then reports
 * SHMB_TRUNCATED naming the segment. */
static void test_a_pointer_past_a_shrunk_end(void) {
    const char *name = h_name(SUITE, "guard");
    shmb_segment *seg = NULL;
    const volatile unsigned char *p;
    CHECK_OK(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 1u << 20, 0, &seg));
    if (!seg) return;
    CHECK_OK(shmb_region_write(shmb_segment_region(seg), 600000, "data", 4));
    CHECK_OK(shmb_region_check(shmb_segment_region(seg)));
    p = (const volatile unsigned char *)shmb_region_data(shmb_segment_region(seg));
    CHECK(p[600000] == 'd');
    shrink(name, 8192);
    CHECK(p[600000] == 0);
    CHECK_RC(shmb_region_check(shmb_segment_region(seg)), SHMB_TRUNCATED);
    CHECK(strstr(h_last_message(), name) != NULL);
    shmb_segment_free(seg);
}

struct shrink_ctx {
    const char *name;
    int fired;
};

static int shrink_on_first_progress(uint64_t done, uint64_t total, void *user) {
    struct shrink_ctx *c = user;
    (void)total;
    if (done > 0 && !c->fired) {
        c->fired = 1;
        shrink(c->name, 0);
    }
    return 0;
}

static void test_recv_shrunk_mid_copy(void) {
    const char *name = h_name(SUITE, "recv");
    char src[300], out[300];
    shmb_recv_options o;
    struct shrink_ctx ctx = {name, 0};
    snprintf(src, sizeof src, "%s/src", h_dir);
    snprintf(out, sizeof out, "%s/out", h_dir);
    make_file(src, 4u << 20);
    CHECK_OK(shmb_send_file(src, name, NULL, NULL));
    shmb_recv_options_init(&o);
    o.progress = shrink_on_first_progress;
    o.progress_user = &ctx;
    CHECK_RC(shmb_recv_file(name, out, &o, NULL), SHMB_TRUNCATED);
    CHECK(ctx.fired);
    CHECK(access(out, F_OK) != 0);
    unlink(src);
}

static void test_fifo_and_short_segments_fail_at_once(void) {
    const char *fifo = h_name(SUITE, "fifo");
    const char *shorty = h_name(SUITE, "short");
    char p[256], out[300];
    shmb_framed *f = NULL;
    shmb_segment *s = NULL;
    shmb_recv_options o;
    FILE *fp;
    shm_path(p, sizeof p, fifo);
    CHECK(mkfifo(p, 0600) == 0);
    CHECK_RC(shmb_framed_open(fifo, SHMB_READ_ONLY, &f), SHMB_INVALID_ARGUMENT);
    CHECK(strstr(h_last_message(), "FIFO") != NULL);
    CHECK_RC(shmb_framed_open(fifo, SHMB_READ_WRITE, &f), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_framed_open_wait(fifo, SHMB_READ_ONLY, WAIT_MS(3600000), &f),
             SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_segment_open(fifo, SHMB_OPEN_ONLY, SHMB_READ_ONLY, 0, 0, &s),
             SHMB_INVALID_ARGUMENT);
    snprintf(out, sizeof out, "%s/out", h_dir);
    shmb_recv_options_init(&o);
    o.timeout_ms = 3600000;
    CHECK_RC(shmb_recv_file(fifo, out, &o, NULL), SHMB_INVALID_ARGUMENT);
    CHECK(f == NULL && s == NULL);

    /* 10 bytes that start with the magic: shorter than 16, bad magic at once (SPEC rule 1). */
    shm_path(p, sizeof p, shorty);
    fp = fopen(p, "wb");
    CHECK(fp != NULL);
    if (fp) {
        fwrite("SHMBRIDG\x01\x00", 1, 10, fp);
        fclose(fp);
    }
    CHECK_RC(shmb_framed_open(shorty, SHMB_READ_ONLY, &f), SHMB_BAD_MAGIC);
    CHECK_RC(shmb_framed_open_wait(shorty, SHMB_READ_ONLY, WAIT_MS(3600000), &f),
             SHMB_BAD_MAGIC);
    CHECK_RC(shmb_recv_file(shorty, out, &o, NULL), SHMB_BAD_MAGIC);
}

static void give_to_nobody(const char *name) {
    char p[256];
    shm_path(p, sizeof p, name);
    CHECK(chown(p, 65534, 65534) == 0);
}

static void test_other_owners_are_refused_unless_allowed(void) {
    const char *name = h_name(SUITE, "owner");
    const char *sname = h_name(SUITE, "ownst");
    char src[300], out[300], buf[8];
    shmb_recv_options o;
    shmb_stream_writer *w = NULL;
    shmb_stream_reader *r = NULL;
    size_t n = 0;
    if (geteuid() != 0) {
        printf("skipped: giving a segment to another user needs root\n");
        return;
    }
    snprintf(src, sizeof src, "%s/src", h_dir);
    snprintf(out, sizeof out, "%s/out", h_dir);
    make_file(src, 1000);
    CHECK_OK(shmb_send_file(src, name, NULL, NULL));
    give_to_nobody(name);
    CHECK_RC(shmb_recv_file(name, out, NULL, NULL), SHMB_PERMISSION_DENIED);
    CHECK(strstr(h_last_message(), "65534") != NULL);
    CHECK(access(out, F_OK) != 0);
    shmb_recv_options_init(&o);
    CHECK(o.allow_owner == SHMB_OWNER_SELF);
    o.allow_owner = -7;
    CHECK_RC(shmb_recv_file(name, out, &o, NULL), SHMB_INVALID_ARGUMENT);
    o.allow_owner = 12345;
    CHECK_RC(shmb_recv_file(name, out, &o, NULL), SHMB_PERMISSION_DENIED);
    o.allow_owner = 65534;
    o.keep = true;
    CHECK_OK(shmb_recv_file(name, out, &o, NULL));
    o.allow_owner = SHMB_OWNER_ANY;
    o.keep = false;
    CHECK_OK(shmb_recv_file(name, out, &o, NULL));

    CHECK_OK(shmb_stream_writer_create(sname, 4096, 3, 0, &w));
    CHECK_OK(shmb_stream_writer_write(w, "abc", 3, WAIT_MS(10000)));
    give_to_nobody(sname);
    CHECK_RC(shmb_stream_reader_open(sname, WAIT_MS(10000), &r), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_stream_reader_open_owner(sname, SHMB_OWNER_SELF, WAIT_MS(10000), &r),
             SHMB_PERMISSION_DENIED);
    CHECK_OK(shmb_stream_reader_open_owner(sname, 65534, WAIT_MS(10000), &r));
    CHECK_OK(shmb_stream_reader_read(r, buf, sizeof buf, WAIT_MS(10000), &n));
    CHECK(n == 3 && memcmp(buf, "abc", 3) == 0);
    shmb_stream_reader_free(r);
    shmb_stream_writer_free(w);
    unlink(src);
    unlink(out);
}

static void test_targets_and_unsized_sources(void) {
    const char *name = h_name(SUITE, "target");
    const char *proc = h_name(SUITE, "proc");
    char src[300], fifo[300], out[300], got[4096], want[4096];
    struct stat st;
    FILE *f;
    size_t ng = 0, nw = 0;
    snprintf(src, sizeof src, "%s/src", h_dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", h_dir);
    snprintf(out, sizeof out, "%s/out", h_dir);
    make_file(src, 100);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK_OK(shmb_send_file(src, name, NULL, NULL));
    CHECK_RC(shmb_recv_file(name, fifo, NULL, NULL), SHMB_INVALID_ARGUMENT);
    CHECK(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(shmb_exists(name));

    /* /proc/version says 0 bytes and has content. */
    CHECK_OK(shmb_send_file("/proc/version", proc, NULL, NULL));
    CHECK_OK(shmb_recv_file(proc, out, NULL, NULL));
    f = fopen(out, "rb");
    if (f) {
        ng = fread(got, 1, sizeof got, f);
        fclose(f);
    }
    f = fopen("/proc/version", "rb");
    if (f) {
        nw = fread(want, 1, sizeof want, f);
        fclose(f);
    }
    CHECK(nw > 0 && ng == nw && memcmp(got, want, nw) == 0);
    unlink(src);
    unlink(fifo);
    unlink(out);
}

int main(void) {
    h_init();
    snprintf(h_dir, sizeof h_dir, "/tmp/shmb_t_chost_%ld", (long)getpid());
    CHECK(mkdir(h_dir, 0755) == 0);
    test_region_read_racing_a_shrink();
    test_a_pointer_past_a_shrunk_end();
    test_recv_shrunk_mid_copy();
    test_fifo_and_short_segments_fail_at_once();
    test_other_owners_are_refused_unless_allowed();
    test_targets_and_unsized_sources();
    rmdir(h_dir);
    return h_report("test_hostile");
}
