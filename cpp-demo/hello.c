/* hello_c: a C program that uses only shmbridge.h. A writer publishes a message into a framed
 * segment (header + checksummed payload), a reader opens the same segment by name, waits for
 * the publish and copies the message out; then the segment is listed and removed.
 * Every call returns a shmb_result; on failure, shmb_last_error_message() says why.
 *
 * Usage: hello_c [name=shmb_demo_hello] */
#include <shmbridge.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, shmb_result rc) {
    char msg[512];
    size_t n = 0;
    shmb_last_error_message(msg, sizeof msg, &n);
    fprintf(stderr, "hello_c: %s failed (code %u, errno %d): %s\n", what, (unsigned)rc,
            shmb_last_error_errno(), msg);
    return 1;
}

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "shmb_demo_hello";
    const char *text = "hello from C, through shared memory";
    shmb_framed *writer = NULL, *reader = NULL;
    shmb_list *list = NULL;
    shmb_segment_info info;
    char buf[128];
    size_t len = 0, i;
    uint32_t seen, now = 0;
    shmb_result rc;

    printf("hello_c: shmbridge %s\n", shmb_version());
    rc = shmb_framed_create(name, 4096, SHMB_PERM_DEFAULT, &writer);
    if (rc != SHMB_OK) return fail("shmb_framed_create", rc);

    rc = shmb_framed_open(name, SHMB_READ_ONLY, &reader);
    if (rc != SHMB_OK) {
        shmb_framed_free(writer);
        shmb_remove(name);
        return fail("shmb_framed_open", rc);
    }
    seen = shmb_framed_publish_count(reader);
    rc = shmb_framed_write(writer, text, strlen(text));
    if (rc == SHMB_OK) {
        const shmb_wait one_second = {1000, NULL, NULL};
        rc = shmb_framed_wait(reader, seen, &one_second, &now);
    }
    if (rc == SHMB_OK) rc = shmb_framed_read(reader, buf, sizeof buf - 1, &len);
    if (rc == SHMB_OK) {
        buf[len] = 0;
        printf("hello_c: the reader got \"%s\" (publish #%u)\n", buf, (unsigned)now);
    }
    if (rc == SHMB_OK && shmb_list_segments(&list) == SHMB_OK) {
        for (i = 0; i < shmb_list_len(list); i++) {
            if (shmb_list_get(list, i, &info) == SHMB_OK && strcmp(info.name, name) == 0)
                printf("hello_c: listed %s: %llu bytes, framed=%s, payload %llu bytes\n",
                       info.name, (unsigned long long)info.size,
                       info.detected == SHMB_DETECTED_FRAMED ? "yes" : "no",
                       (unsigned long long)info.header.payload_len);
        }
        shmb_list_free(list);
    }
    shmb_framed_free(reader);
    shmb_framed_free(writer);
    shmb_remove(name); /* closing never removes a name; removing is explicit */
    return rc == SHMB_OK ? 0 : fail("reading the message", rc);
}
