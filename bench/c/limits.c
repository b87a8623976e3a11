/* The machine's limits for moving SIZE bytes, which bound what any transfer can reach:
 *
 *   memcpy warm      memcpy between two buffers whose pages are already there (the copy alone)
 *   fresh anon pages memcpy into new anonymous pages (the copy plus a page fault per 4 KiB)
 *   fresh shm pages  fallocate a new /dev/shm segment, then memcpy into its mapping
 *   fault only       touch one byte per page of new anonymous memory (the fault cost alone)
 *
 * Each is run REPEAT times; the best is printed (a limit, not a typical figure) as seconds,
 * one line per measure, "name seconds".
 *
 *   limits SIZE_BYTES [REPEAT] [SEGMENT_NAME]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static char *anon(size_t n) {
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: limits SIZE_BYTES [REPEAT] [SEGMENT_NAME]\n");
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10);
    int repeat = argc > 2 ? atoi(argv[2]) : 3;
    const char *name = argc > 3 ? argv[3] : "shmb_bench_limits";
    char *src = anon(n);
    memset(src, 0x5a, n);
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < repeat; r++) {
        char *dst = anon(n);
        double t = now();
        memcpy(dst, src, n);
        double fresh = now() - t;
        t = now();
        memcpy(dst, src, n);
        double warm = now() - t;
        munmap(dst, n);
        dst = anon(n);
        t = now();
        for (size_t i = 0; i < n; i += 4096) dst[i] = 1;
        double fault = now() - t;
        munmap(dst, n);

        char path[300];
        snprintf(path, sizeof path, "/%s", name);
        t = now();
        int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            perror("shm_open");
            return 1;
        }
        shm_unlink(path);
        if (posix_fallocate(fd, 0, (off_t)n) != 0) {
            perror("posix_fallocate");
            return 1;
        }
        char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            perror("mmap shm");
            return 1;
        }
        memcpy(m, src, n);
        double shm = now() - t;
        munmap(m, n);
        close(fd);
        double v[4] = {warm, fresh, shm, fault};
        for (int i = 0; i < 4; i++)
            if (v[i] < best[i]) best[i] = v[i];
    }
    printf("memcpy-warm %.4f\nfresh-anon %.4f\nfresh-shm %.4f\nfault-only %.4f\n", best[0], best[1],
           best[2], best[3]);
    return 0;
}
