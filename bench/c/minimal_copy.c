/* The baseline the one-shot transfer is held to: the least a C program can do to move a file
 * through shared memory. It creates a POSIX shared-memory segment the size of the file,
 * read()s the file into the mapping, then write()s the mapping out to the destination and
 * removes the segment. One process, no checksum, no header, no synchronisation.
 *
 *   minimal_copy SRC DST SEGMENT_NAME
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SRC DST SEGMENT_NAME\n", argv[0]);
        return 2;
    }
    int in = open(argv[1], O_RDONLY);
    if (in < 0) die("open src");
    struct stat st;
    if (fstat(in, &st) != 0) die("fstat");
    size_t size = (size_t)st.st_size;
    char name[300];
    snprintf(name, sizeof name, "/%s", argv[3]);
    int shm = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (shm < 0) die("shm_open");
    if (ftruncate(shm, (off_t)size) != 0) die("ftruncate");
    char *map = size ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0) : NULL;
    if (size && map == MAP_FAILED) die("mmap");
    size_t off = 0;
    while (off < size) {
        ssize_t n = read(in, map + off, size - off > (8u << 20) ? (8u << 20) : size - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("read");
        off += (size_t)n;
    }
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0) die("open dst");
    off = 0;
    while (off < size) {
        ssize_t n = write(out, map + off, size - off > (8u << 20) ? (8u << 20) : size - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("write");
        off += (size_t)n;
    }
    if (close(out) != 0) die("close");
    if (size) munmap(map, size);
    shm_unlink(name);
    return 0;
}
