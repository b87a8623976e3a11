/* Tests of the C ABI (shmbridge.h) on real /dev/shm segments, real files and real fork():
 * the Boost-style object, segments, typed fields, the three layouts, file and anonymous
 * mappings, listing, and every kind of bad input: NULL for every pointer argument, invalid
 * names, zero and absurd sizes, unknown mode values, message buffers too small, a framed open
 * of a raw segment, truncated segments. Compiled with -Wall -Wextra -Wpedantic -Werror. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>

#ifndef SHMB_EXPECTED_VERSION
#error "SHMB_EXPECTED_VERSION (the workspace version) must be defined by the build"
#endif

#define SUITE "c"

static void test_version(void) {
    unsigned maj = 0, min = 0, pat = 0;
    CHECK(strcmp(SHMB_VERSION_STRING, SHMB_EXPECTED_VERSION) == 0);
    CHECK(strcmp(shmb_version(), SHMB_EXPECTED_VERSION) == 0);
    CHECK(sscanf(SHMB_EXPECTED_VERSION, "%u.%u.%u", &maj, &min, &pat) == 3);
    CHECK(maj == SHMB_VERSION_MAJOR && min == SHMB_VERSION_MINOR && pat == SHMB_VERSION_PATCH);
}

/* The Boost sender/recver sequence: create_only with no size, truncate, map, read_only peer. */
static void test_boost_style_object(void) {
    const char *name = h_name(SUITE, "obj");
    shmb_object *obj = NULL, *ro = NULL, *again = NULL;
    shmb_region *rw = NULL, *rr = NULL, *tmp = NULL;
    uint64_t size = 99;
    uint32_t perm = 0;
    char buf[6] = {0};

    CHECK_OK(shmb_object_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, SHMB_PERM_DEFAULT, &obj));
    CHECK(obj != NULL);
    CHECK(shmb_object_created(obj));
    CHECK(strcmp(shmb_object_name(obj), name) == 0);
    CHECK(shmb_object_access(obj) == SHMB_READ_WRITE);
    CHECK_OK(shmb_object_size(obj, &size));
    CHECK(size == 0);
    CHECK_OK(shmb_object_permissions(obj, &perm));
    CHECK(perm == 0600);
    /* An empty object cannot be mapped: give it a size first. */
    CHECK_RC(shmb_object_map(obj, SHMB_READ_WRITE, 0, 0, &tmp), SHMB_INVALID_SIZE);
    CHECK(tmp == NULL);
    CHECK_OK(shmb_object_truncate(obj, 10000));
    CHECK_OK(shmb_object_size(obj, &size));
    CHECK(size == 10000);
    CHECK_OK(shmb_object_map(obj, SHMB_READ_WRITE, 0, 0, &rw));
    CHECK(shmb_region_len(rw) == 10000);
    CHECK(shmb_region_writable(rw));
    memcpy((char *)shmb_region_data(rw) + 9990, "hello", 5);

    CHECK_OK(shmb_object_open(name, SHMB_OPEN_ONLY, SHMB_READ_ONLY, 0, &ro));
    CHECK(!shmb_object_created(ro));
    CHECK_OK(shmb_object_map(ro, SHMB_READ_ONLY, 0, 0, &rr));
    CHECK(!shmb_region_writable(rr));
    CHECK_OK(shmb_region_read(rr, 9990, buf, 5));
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK(memcmp((char *)shmb_region_data(rr) + 9990, "hello", 5) == 0);
    CHECK_RC(shmb_region_write(rr, 0, "x", 1), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_object_map(ro, SHMB_READ_WRITE, 0, 0, &tmp), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_object_truncate(ro, 10), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_object_map(obj, SHMB_COPY_ON_WRITE, 0, 0, &tmp), SHMB_UNSUPPORTED);
    /* Partial mappings at any offset; len 0 maps to the end. */
    CHECK_OK(shmb_object_map(ro, SHMB_READ_ONLY, 9990, 0, &tmp));
    CHECK(shmb_region_len(tmp) == 10);
    CHECK(memcmp(shmb_region_data(tmp), "hello", 5) == 0);
    shmb_region_free(tmp);
    tmp = NULL;
    CHECK_RC(shmb_object_map(ro, SHMB_READ_ONLY, 10000, 0, &tmp), SHMB_OUT_OF_BOUNDS);
    CHECK_RC(shmb_object_map(ro, SHMB_READ_ONLY, 9000, 1001, &tmp), SHMB_OUT_OF_BOUNDS);
    CHECK(tmp == NULL);

    /* Open modes and their errors, with the errno kept. */
    CHECK_RC(shmb_object_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 0, &again),
             SHMB_ALREADY_EXISTS);
    CHECK(shmb_last_error_errno() == EEXIST);
    CHECK(strstr(h_last_message(), name) != NULL);
    CHECK(again == NULL);
    CHECK_OK(shmb_object_open(name, SHMB_OPEN_OR_CREATE, SHMB_READ_WRITE, 0, &again));
    CHECK(!shmb_object_created(again));
    shmb_object_free(again);

    /* The mapping outlives its object handle; closing never removes the name. */
    shmb_object_free(obj);
    shmb_object_free(ro);
    CHECK(memcmp((char *)shmb_region_data(rw) + 9990, "hello", 5) == 0);
    CHECK(shmb_exists(name));
    CHECK_OK(shmb_remove(name));
    CHECK(!shmb_exists(name));
    CHECK_RC(shmb_remove(name), SHMB_NOT_FOUND);
    CHECK(shmb_last_error_errno() == ENOENT);
    CHECK_RC(shmb_object_open(name, SHMB_OPEN_ONLY, SHMB_READ_ONLY, 0, &again), SHMB_NOT_FOUND);
    CHECK(shmb_last_error_errno() == ENOENT);
    shmb_region_free(rw);
    shmb_region_free(rr);
}

static void test_permissions(void) {
    const char *name = h_name(SUITE, "perm");
    shmb_object *obj = NULL;
    uint32_t perm = 0;
    CHECK_RC(shmb_object_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 01777, &obj),
             SHMB_INVALID_ARGUMENT);
    CHECK(!shmb_exists(name));
    CHECK_OK(shmb_object_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 0640, &obj));
    CHECK_OK(shmb_object_permissions(obj, &perm));
    CHECK(perm == 0640); /* exactly, whatever the umask */
    CHECK_OK(shmb_object_set_permissions(obj, 0600));
    CHECK_OK(shmb_object_permissions(obj, &perm));
    CHECK(perm == 0600);
    CHECK_RC(shmb_object_set_permissions(obj, 070000), SHMB_INVALID_ARGUMENT);
    shmb_object_free(obj);
    CHECK_OK(shmb_remove(name));
}

/* The seed's program1/program2: typed fields at offsets, little-endian. */
static void test_segment_typed_fields(void) {
    const char *name = h_name(SUITE, "typed");
    shmb_segment *seg = NULL, *peer = NULL, *tmp = NULL;
    const shmb_region *r, *pr;
    uint8_t u8 = 0;
    int32_t i32 = 0;
    uint32_t u32 = 0;
    float f32 = 0;
    double f64 = 0;
    int64_t i64 = 0;
    uint64_t u64 = 0;
    int16_t i16 = 0;
    uint16_t u16 = 0;
    int8_t i8 = 0;
    const unsigned char *bytes;

    CHECK_OK(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 1024, 0, &seg));
    CHECK(shmb_segment_size(seg) == 1024);
    CHECK(strcmp(shmb_segment_name(seg), name) == 0);
    r = shmb_segment_region(seg);
    CHECK(shmb_region_data(r) == shmb_segment_data(seg));
    CHECK_OK(shmb_region_set_u8(r, 0, 128));
    CHECK_OK(shmb_region_set_i32(r, 4, -1));
    CHECK_OK(shmb_region_set_u32(r, 8, 1));
    CHECK_OK(shmb_region_set_f32(r, 12, 2.0f));
    CHECK_OK(shmb_region_set_i16(r, 17, -300)); /* unaligned on purpose */
    CHECK_OK(shmb_region_set_u64(r, 20, UINT64_C(0x0102030405060708)));
    CHECK_OK(shmb_region_set_f64(r, 33, 1.5));
    CHECK_OK(shmb_region_set_i8(r, 41, -7));
    CHECK_OK(shmb_region_set_u16(r, 42, 65535));
    CHECK_OK(shmb_region_set_i64(r, 44, -5));
    bytes = (const unsigned char *)shmb_segment_data(seg);
    CHECK(bytes[0] == 128);
    CHECK(bytes[4] == 0xff && bytes[7] == 0xff);
    CHECK(bytes[8] == 1 && bytes[9] == 0); /* little-endian */
    CHECK(bytes[20] == 0x08 && bytes[27] == 0x01);

    /* program2: another handle changes the fields, program1 sees them. */
    CHECK_OK(shmb_segment_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, 0, &peer));
    pr = shmb_segment_region(peer);
    CHECK_OK(shmb_region_set_u8(pr, 1, 127));
    CHECK_OK(shmb_region_set_u8(pr, 2, 255));
    CHECK_OK(shmb_region_set_i32(pr, 4, -128));
    CHECK_OK(shmb_region_set_u32(pr, 8, 6666));
    CHECK_OK(shmb_region_set_f32(pr, 12, 1.414f));
    CHECK_OK(shmb_region_get_u8(r, 1, &u8));
    CHECK(u8 == 127);
    CHECK_OK(shmb_region_get_i32(r, 4, &i32));
    CHECK(i32 == -128);
    CHECK_OK(shmb_region_get_u32(r, 8, &u32));
    CHECK(u32 == 6666);
    CHECK_OK(shmb_region_get_f32(r, 12, &f32));
    CHECK(f32 == 1.414f);
    CHECK_OK(shmb_region_get_i16(r, 17, &i16));
    CHECK(i16 == -300);
    CHECK_OK(shmb_region_get_u64(r, 20, &u64));
    CHECK(u64 == UINT64_C(0x0102030405060708));
    CHECK_OK(shmb_region_get_f64(r, 33, &f64));
    CHECK(f64 == 1.5);
    CHECK_OK(shmb_region_get_i8(r, 41, &i8));
    CHECK(i8 == -7);
    CHECK_OK(shmb_region_get_u16(r, 42, &u16));
    CHECK(u16 == 65535);
    CHECK_OK(shmb_region_get_i64(r, 44, &i64));
    CHECK(i64 == -5);

    /* Bounds: the last byte is fine, one past it is not; outputs untouched on failure. */
    CHECK_OK(shmb_region_get_u8(r, 1023, &u8));
    u32 = 42;
    CHECK_RC(shmb_region_get_u32(r, 1021, &u32), SHMB_OUT_OF_BOUNDS);
    CHECK(u32 == 42);
    CHECK_RC(shmb_region_get_u8(r, UINT64_MAX, &u8), SHMB_OUT_OF_BOUNDS);
    CHECK_RC(shmb_region_set_u64(r, 1017, 1), SHMB_OUT_OF_BOUNDS);
    CHECK_RC(shmb_region_write(r, 1020, "hello", 5), SHMB_OUT_OF_BOUNDS);

    /* open_or_create of a segment smaller than asked, and sizes that cannot be. */
    CHECK_RC(shmb_segment_open(name, SHMB_OPEN_OR_CREATE, SHMB_READ_WRITE, 4096, 0, &tmp),
             SHMB_INVALID_SIZE);
    CHECK(tmp == NULL);
    shmb_segment_free(peer);
    shmb_segment_free(seg);
    CHECK_OK(shmb_remove(name));
}

static void test_bad_sizes(void) {
    const char *name = h_name(SUITE, "size");
    shmb_segment *seg = NULL;
    shmb_object *obj = NULL;
    shmb_framed *fr = NULL;
    shmb_region *r = NULL;
    CHECK_RC(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 0, 0, &seg),
             SHMB_INVALID_SIZE);
    CHECK_RC(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, UINT64_MAX, 0, &seg),
             SHMB_INVALID_SIZE);
    CHECK_RC(shmb_segment_open(name, SHMB_OPEN_OR_CREATE, SHMB_READ_WRITE, 0, 0, &seg),
             SHMB_INVALID_SIZE);
    /* Larger than /dev/shm can hold: reserved up front, so an error now and not SIGBUS later,
     * and the name is given back. */
    CHECK_RC(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, UINT64_C(1) << 50, 0,
                               &seg),
             SHMB_NO_SPACE);
    CHECK(seg == NULL);
    CHECK(!shmb_exists(name));
    CHECK_RC(shmb_framed_create(name, UINT64_MAX, 0, &fr), SHMB_INVALID_SIZE);
    CHECK(!shmb_exists(name));
    CHECK_OK(shmb_object_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 0, &obj));
    CHECK_RC(shmb_object_truncate(obj, UINT64_MAX), SHMB_INVALID_SIZE);
    CHECK_OK(shmb_object_truncate(obj, 0)); /* Boost allows truncating to 0 */
    shmb_object_free(obj);
    CHECK_OK(shmb_remove(name));
    CHECK_RC(shmb_region_anonymous(0, &r), SHMB_INVALID_SIZE);
    CHECK_RC(shmb_region_anonymous(SIZE_MAX, &r), SHMB_INVALID_SIZE);
    CHECK(r == NULL);
}

static void test_invalid_names(void) {
    char longname[400];
    const char *bad[5];
    shmb_object *obj = NULL;
    shmb_segment *seg = NULL;
    shmb_framed *fr = NULL;
    int i;
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    bad[0] = "";
    bad[1] = "a/b";
    bad[2] = longname;
    bad[3] = "..";
    bad[4] = "bad\xff\xfeutf8";
    for (i = 0; i < 5; i++) {
        CHECK_RC(shmb_object_open(bad[i], SHMB_OPEN_OR_CREATE, SHMB_READ_WRITE, 0, &obj),
                 SHMB_INVALID_NAME);
        CHECK_RC(shmb_segment_open(bad[i], SHMB_CREATE_ONLY, SHMB_READ_WRITE, 10, 0, &seg),
                 SHMB_INVALID_NAME);
        CHECK_RC(shmb_framed_create(bad[i], 10, 0, &fr), SHMB_INVALID_NAME);
        CHECK_RC(shmb_framed_open(bad[i], SHMB_READ_ONLY, &fr), SHMB_INVALID_NAME);
        CHECK_RC(shmb_remove(bad[i]), SHMB_INVALID_NAME);
        CHECK(!shmb_exists(bad[i]));
    }
    CHECK(obj == NULL && seg == NULL && fr == NULL);
    CHECK(shmb_max_name_len() == 255);
    CHECK(strstr((shmb_remove("a/b"), h_last_message()), "'/'") != NULL);
}

static void test_unknown_modes(void) {
    const char *name = h_name(SUITE, "mode");
    shmb_object *obj = NULL;
    shmb_segment *seg = NULL;
    shmb_framed *fr = NULL;
    shmb_file *file = NULL;
    shmb_region *r = NULL;
    const uint32_t bad[4] = {0, 4, 99, 0xffffffffu};
    int i;
    for (i = 0; i < 4; i++) {
        CHECK_RC(shmb_object_open(name, bad[i], SHMB_READ_WRITE, 0, &obj), SHMB_INVALID_ARGUMENT);
        CHECK_RC(shmb_object_open(name, SHMB_CREATE_ONLY, bad[i], 0, &obj), SHMB_INVALID_ARGUMENT);
        CHECK_RC(shmb_segment_open(name, bad[i], SHMB_READ_WRITE, 10, 0, &seg),
                 SHMB_INVALID_ARGUMENT);
        CHECK_RC(shmb_segment_open(name, SHMB_CREATE_ONLY, bad[i], 10, 0, &seg),
                 SHMB_INVALID_ARGUMENT);
        CHECK_RC(shmb_framed_open(name, bad[i], &fr), SHMB_INVALID_ARGUMENT);
        CHECK_RC(shmb_file_open("/etc/hostname", bad[i], &file), SHMB_INVALID_ARGUMENT);
        CHECK_RC(shmb_map_file("/etc/hostname", bad[i], &r), SHMB_INVALID_ARGUMENT);
    }
    CHECK(strstr(h_last_message(), "unknown access") != NULL);
    CHECK(!shmb_exists(name)); /* nothing was created by a call that failed */
    CHECK_OK(shmb_object_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 0, &obj));
    CHECK_OK(shmb_object_truncate(obj, 100));
    CHECK_RC(shmb_object_map(obj, 0, 0, 0, &r), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_object_map(obj, 42, 0, 0, &r), SHMB_INVALID_ARGUMENT);
    CHECK(r == NULL);
    shmb_object_free(obj);
    CHECK_OK(shmb_remove(name));
}

/* NULL for every pointer argument of every function: an error code, never a crash, and a
 * NULL output never leaves a created segment behind. */
static void test_null_arguments(void) {
    const char *name = h_name(SUITE, "null");
    shmb_object *obj = NULL;
    shmb_segment *seg = NULL;
    shmb_framed *fr = NULL;
    shmb_file *file = NULL;
    shmb_region *r = NULL;
    shmb_list *list = NULL;
    shmb_header_info hi;
    shmb_segment_info si;
    uint64_t u64 = 0;
    uint32_t u32 = 0;
    size_t n = 0;
    char buf[16];
    uint8_t u8;
    int8_t i8;
    uint16_t u16;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    const shmb_result NUL = SHMB_NULL_ARGUMENT;

    CHECK_RC(shmb_object_open(NULL, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 0, &obj), NUL);
    CHECK_RC(shmb_object_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 0, NULL), NUL);
    CHECK(!shmb_exists(name));
    CHECK_RC(shmb_segment_open(NULL, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 10, 0, &seg), NUL);
    CHECK_RC(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 10, 0, NULL), NUL);
    CHECK(!shmb_exists(name));
    CHECK_RC(shmb_framed_create(NULL, 10, 0, &fr), NUL);
    CHECK_RC(shmb_framed_create(name, 10, 0, NULL), NUL);
    CHECK(!shmb_exists(name));
    CHECK_RC(shmb_framed_open(NULL, SHMB_READ_ONLY, &fr), NUL);
    CHECK_RC(shmb_framed_open(name, SHMB_READ_ONLY, NULL), NUL);
    CHECK_RC(shmb_remove(NULL), NUL);
    CHECK(!shmb_exists(NULL));
    CHECK(strstr(h_last_message(), "must not be NULL") != NULL);

    CHECK_RC(shmb_object_size(NULL, &u64), NUL);
    CHECK_RC(shmb_object_truncate(NULL, 10), NUL);
    CHECK_RC(shmb_object_permissions(NULL, &u32), NUL);
    CHECK_RC(shmb_object_set_permissions(NULL, 0600), NUL);
    CHECK_RC(shmb_object_map(NULL, SHMB_READ_ONLY, 0, 0, &r), NUL);
    CHECK(shmb_object_name(NULL) == NULL);
    CHECK(shmb_object_access(NULL) == 0);
    CHECK(!shmb_object_created(NULL));
    shmb_object_free(NULL);

    CHECK(shmb_segment_region(NULL) == NULL);
    CHECK(shmb_segment_object(NULL) == NULL);
    CHECK(shmb_segment_name(NULL) == NULL);
    CHECK(shmb_segment_data(NULL) == NULL);
    CHECK(shmb_segment_size(NULL) == 0);
    shmb_segment_free(NULL);

    CHECK_RC(shmb_region_anonymous(10, NULL), NUL);
    CHECK(shmb_region_data(NULL) == NULL);
    CHECK(shmb_region_len(NULL) == 0);
    CHECK(!shmb_region_writable(NULL));
    CHECK_RC(shmb_region_read(NULL, 0, buf, 1), NUL);
    CHECK_RC(shmb_region_write(NULL, 0, buf, 1), NUL);
    CHECK_RC(shmb_region_flush(NULL), NUL);
    CHECK_RC(shmb_region_check(NULL), NUL);
    CHECK_RC(shmb_region_get_u8(NULL, 0, &u8), NUL);
    CHECK_RC(shmb_region_get_i8(NULL, 0, &i8), NUL);
    CHECK_RC(shmb_region_get_u16(NULL, 0, &u16), NUL);
    CHECK_RC(shmb_region_get_i16(NULL, 0, &i16), NUL);
    CHECK_RC(shmb_region_get_u32(NULL, 0, &u32), NUL);
    CHECK_RC(shmb_region_get_i32(NULL, 0, &i32), NUL);
    CHECK_RC(shmb_region_get_u64(NULL, 0, &u64), NUL);
    CHECK_RC(shmb_region_get_i64(NULL, 0, &i64), NUL);
    CHECK_RC(shmb_region_get_f32(NULL, 0, &f32), NUL);
    CHECK_RC(shmb_region_get_f64(NULL, 0, &f64), NUL);
    CHECK_RC(shmb_region_set_u8(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_i8(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_u16(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_i16(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_u32(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_i32(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_u64(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_i64(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_f32(NULL, 0, 1), NUL);
    CHECK_RC(shmb_region_set_f64(NULL, 0, 1), NUL);
    CHECK_RC(shmb_prefixed_len(NULL, &u64), NUL);
    CHECK_RC(shmb_prefixed_read(NULL, buf, sizeof buf, &n), NUL);
    CHECK_RC(shmb_prefixed_write(NULL, buf, 1), NUL);
    shmb_region_free(NULL);

    /* A live region with NULL buffers and outputs. */
    CHECK_OK(shmb_region_anonymous(64, &r));
    CHECK_RC(shmb_region_read(r, 0, NULL, 1), NUL);
    CHECK_RC(shmb_region_write(r, 0, NULL, 1), NUL);
    CHECK_OK(shmb_region_read(r, 0, NULL, 0)); /* an empty buffer may be NULL */
    CHECK_OK(shmb_region_write(r, 0, NULL, 0));
    CHECK_RC(shmb_region_get_u8(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_i8(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_u16(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_i16(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_u32(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_i32(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_u64(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_i64(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_f32(r, 0, NULL), NUL);
    CHECK_RC(shmb_region_get_f64(r, 0, NULL), NUL);
    CHECK_RC(shmb_prefixed_len(r, NULL), NUL);
    CHECK_RC(shmb_prefixed_read(r, NULL, 4, &n), NUL);
    CHECK_RC(shmb_prefixed_read(r, buf, sizeof buf, NULL), NUL);
    CHECK_RC(shmb_prefixed_write(r, NULL, 3), NUL);
    shmb_region_free(r);
    r = NULL;

    CHECK_RC(shmb_file_open(NULL, SHMB_READ_ONLY, &file), NUL);
    CHECK_RC(shmb_file_open("/etc/hostname", SHMB_READ_ONLY, NULL), NUL);
    CHECK_RC(shmb_file_size(NULL, &u64), NUL);
    CHECK_RC(shmb_file_map(NULL, SHMB_READ_ONLY, 0, 0, &r), NUL);
    CHECK_RC(shmb_map_file(NULL, SHMB_READ_ONLY, &r), NUL);
    CHECK_RC(shmb_map_file("/etc/hostname", SHMB_READ_ONLY, NULL), NUL);
    shmb_file_free(NULL);

    CHECK(shmb_framed_name(NULL) == NULL);
    CHECK(shmb_framed_capacity(NULL) == 0);
    CHECK(shmb_framed_payload_len(NULL) == 0);
    CHECK(shmb_framed_publish_count(NULL) == 0);
    CHECK_RC(shmb_framed_header(NULL, &hi), NUL);
    CHECK_RC(shmb_framed_write(NULL, buf, 1), NUL);
    CHECK_RC(shmb_framed_read(NULL, buf, sizeof buf, &n), NUL);
    CHECK_RC(shmb_framed_wait(NULL, 0, WAIT_MS(0), &u32), NUL);
    CHECK_RC(shmb_framed_close_writer(NULL), NUL);
    shmb_framed_free(NULL);

    CHECK_RC(shmb_list_segments(NULL), NUL);
    CHECK(shmb_list_len(NULL) == 0);
    CHECK_RC(shmb_list_get(NULL, 0, &si), NUL);
    shmb_list_free(NULL);

    CHECK(shmb_result_message(SHMB_OK, buf, sizeof buf, NULL) == NUL);
    CHECK(shmb_result_message(SHMB_OK, NULL, 10, &n) == NUL);
    CHECK(shmb_last_error_message(buf, sizeof buf, NULL) == NUL);
    CHECK(shmb_last_error_message(NULL, 10, &n) == NUL);

    /* Live handles with NULL outputs. */
    CHECK_OK(shmb_framed_create(name, 64, 0, &fr));
    CHECK_RC(shmb_framed_header(fr, NULL), NUL);
    CHECK_RC(shmb_framed_write(fr, NULL, 3), NUL);
    CHECK_RC(shmb_framed_read(fr, NULL, 3, &n), NUL);
    CHECK_RC(shmb_framed_read(fr, buf, sizeof buf, NULL), NUL);
    CHECK_RC(shmb_framed_wait(fr, 0, WAIT_MS(0), NULL), NUL);
    shmb_framed_free(fr);
    CHECK_OK(shmb_object_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, &obj));
    CHECK_RC(shmb_object_size(obj, NULL), NUL);
    CHECK_RC(shmb_object_permissions(obj, NULL), NUL);
    CHECK_RC(shmb_object_map(obj, SHMB_READ_ONLY, 0, 0, NULL), NUL);
    shmb_object_free(obj);
    CHECK_OK(shmb_list_segments(&list));
    CHECK_RC(shmb_list_get(list, 0, NULL), NUL);
    shmb_list_free(list);
    CHECK_OK(shmb_file_open("/etc/hostname", SHMB_READ_ONLY, &file));
    CHECK_RC(shmb_file_size(file, NULL), NUL);
    CHECK_RC(shmb_file_map(file, SHMB_READ_ONLY, 0, 0, NULL), NUL);
    shmb_file_free(file);
    CHECK_OK(shmb_remove(name));
}

static void test_messages(void) {
    char small[8], big[512];
    size_t n = 0, full = 0;
    shmb_object *obj = NULL;
    /* Every code has a message; unknown numbers are described as such. */
    CHECK_OK(shmb_result_message(SHMB_TRUNCATED, big, sizeof big, &n));
    CHECK(strcmp(big, "segment truncated") == 0 && n == strlen(big));
    CHECK_OK(shmb_result_message(SHMB_NULL_ARGUMENT, big, sizeof big, &n));
    CHECK(strstr(big, "NULL") != NULL);
    CHECK_OK(shmb_result_message(12345, big, sizeof big, &n));
    CHECK(strstr(big, "unknown result code 12345") != NULL);
    /* Too small: truncated, NUL-terminated, and the full length reported. */
    CHECK(shmb_result_message(SHMB_ALREADY_EXISTS, small, sizeof small, &n) ==
          SHMB_BUFFER_TOO_SMALL);
    CHECK(n == strlen("already exists"));
    CHECK(strcmp(small, "already") == 0);
    n = 0;
    CHECK(shmb_result_message(SHMB_ALREADY_EXISTS, NULL, 0, &n) == SHMB_BUFFER_TOO_SMALL);
    CHECK(n == strlen("already exists"));

    /* The last error: detailed, with the segment name; too-small buffers report the size. */
    CHECK_RC(shmb_object_open("shmb_t_c_definitely_missing", SHMB_OPEN_ONLY, SHMB_READ_ONLY, 0,
                              &obj),
             SHMB_NOT_FOUND);
    CHECK(shmb_last_error_message(NULL, 0, &full) == SHMB_BUFFER_TOO_SMALL);
    CHECK(full > 20);
    CHECK(shmb_last_error_message(small, sizeof small, &n) == SHMB_BUFFER_TOO_SMALL);
    CHECK(n == full && strlen(small) == sizeof small - 1);
    CHECK_OK(shmb_last_error_message(big, sizeof big, &n));
    CHECK(n == full);
    CHECK(strstr(big, "shmb_t_c_definitely_missing") != NULL);
    CHECK(strstr(big, "os error 2") != NULL);
    CHECK(shmb_last_error_errno() == ENOENT);
    CHECK(shmb_last_error_code() == SHMB_NOT_FOUND);
    /* Reading the message neither fails the thread nor clears it. */
    CHECK(shmb_last_error_code() == SHMB_NOT_FOUND);
    /* An error that did not come from the OS has errno 0. */
    CHECK_RC(shmb_remove(""), SHMB_INVALID_NAME);
    CHECK(shmb_last_error_errno() == 0);
}

static void test_framed(void) {
    const char *name = h_name(SUITE, "framed");
    const char *raw = h_name(SUITE, "raw");
    shmb_framed *w = NULL, *rd = NULL, *tmp = NULL;
    shmb_segment *seg = NULL;
    shmb_object *obj = NULL;
    shmb_header_info hi;
    char buf[64];
    size_t n = 0;
    uint32_t count = 0, seen;

    CHECK_OK(shmb_framed_create(name, 1000, 0, &w));
    CHECK(shmb_framed_capacity(w) == 1000);
    CHECK(strcmp(shmb_framed_name(w), name) == 0);
    seen = shmb_framed_publish_count(w);
    CHECK_OK(shmb_framed_write(w, "hello, framed", 13));
    CHECK_OK(shmb_framed_open(name, SHMB_READ_ONLY, &rd));
    CHECK_OK(shmb_framed_wait(rd, seen, WAIT_MS(1000), &count));
    CHECK(count == seen + 1);
    CHECK(shmb_framed_payload_len(rd) == 13);
    CHECK_OK(shmb_framed_header(rd, &hi));
    CHECK(hi.version_major == 1 && hi.header_len == 128 && hi.kind == SHMB_KIND_MESSAGE);
    CHECK(hi.capacity == 1000 && hi.payload_len == 13 && hi.has_checksum);
    CHECK((hi.flags & SHMB_FLAG_PUBLISHED) != 0);
    CHECK(hi.creator_pid == (uint32_t)getpid() && hi.creator_alive);
    CHECK(hi.sequence % 2 == 0);
    CHECK_OK(shmb_framed_read(rd, buf, sizeof buf, &n));
    CHECK(n == 13 && memcmp(buf, "hello, framed", 13) == 0);
    /* A buffer too small: nothing copied, the size needed reported. */
    n = 0;
    CHECK_RC(shmb_framed_read(rd, buf, 4, &n), SHMB_BUFFER_TOO_SMALL);
    CHECK(n == 13);
    CHECK_RC(shmb_framed_write(rd, "x", 1), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_framed_write(w, buf, 1001), SHMB_OUT_OF_BOUNDS);
    CHECK_RC(shmb_framed_wait(rd, shmb_framed_publish_count(rd), WAIT_MS(20), &count), SHMB_TIMEOUT);
    CHECK_OK(shmb_framed_close_writer(w));
    CHECK_RC(shmb_framed_wait(rd, shmb_framed_publish_count(rd), WAIT_MS(1000), &count),
             SHMB_WRITER_CLOSED);
    CHECK_RC(shmb_framed_create(name, 10, 0, &tmp), SHMB_ALREADY_EXISTS);

    /* A framed open of a raw segment (what Boost or the stdlib make). */
    CHECK_OK(shmb_segment_open(raw, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 4096, 0, &seg));
    CHECK_RC(shmb_framed_open(raw, SHMB_READ_ONLY, &tmp), SHMB_BAD_MAGIC);
    CHECK(strstr(h_last_message(), "not a framed segment") != NULL);
    CHECK(tmp == NULL);
    shmb_segment_free(seg);
    CHECK_OK(shmb_remove(raw));
    CHECK_OK(shmb_segment_open(raw, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 8, 0, &seg));
    CHECK_RC(shmb_framed_open(raw, SHMB_READ_ONLY, &tmp), SHMB_BAD_MAGIC);
    shmb_segment_free(seg);
    CHECK_OK(shmb_remove(raw));

    /* A truncated framed segment: open refuses it, a live mapping reports it (no SIGBUS). */
    CHECK_OK(shmb_object_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, &obj));
    CHECK_OK(shmb_object_truncate(obj, 100));
    CHECK_RC(shmb_framed_open(name, SHMB_READ_ONLY, &tmp), SHMB_TRUNCATED);
    CHECK_RC(shmb_framed_read(rd, buf, sizeof buf, &n), SHMB_TRUNCATED);
    CHECK_RC(shmb_framed_header(rd, &hi), SHMB_TRUNCATED);
    CHECK_OK(shmb_object_truncate(obj, 128 + 500)); /* header intact, capacity says 1000 */
    CHECK_RC(shmb_framed_open(name, SHMB_READ_ONLY, &tmp), SHMB_TRUNCATED);
    shmb_object_free(obj);
    shmb_framed_free(rd);
    shmb_framed_free(w);
    CHECK_OK(shmb_remove(name));

    /* Corrupt and future headers. */
    CHECK_OK(shmb_framed_create(name, 64, 0, &w));
    shmb_framed_free(w);
    CHECK_OK(shmb_segment_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, 0, &seg));
    CHECK_OK(shmb_region_set_u64(shmb_segment_region(seg), 32, 65)); /* payload_len > capacity */
    CHECK_RC(shmb_framed_open(name, SHMB_READ_ONLY, &tmp), SHMB_CORRUPT_HEADER);
    CHECK_OK(shmb_region_set_u64(shmb_segment_region(seg), 32, 0));
    CHECK_OK(shmb_region_set_u16(shmb_segment_region(seg), 8, 2)); /* version 2.0 */
    CHECK_RC(shmb_framed_open(name, SHMB_READ_ONLY, &tmp), SHMB_UNSUPPORTED_VERSION);
    CHECK(tmp == NULL);
    shmb_segment_free(seg);
    CHECK_OK(shmb_remove(name));
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* An interrupt that asks to stop on its second call. */
static int stop_on_second_call(void *user) {
    int *calls = (int *)user;
    return ++*calls >= 2;
}

/* Waiting: for a segment to appear, for a publish (read-only too), for a writer that is gone;
 * timeouts and interrupts. */
static void test_framed_waiting(void) {
    const char *name = h_name(SUITE, "fwait");
    shmb_framed *rd = NULL;
    shmb_header_info hi;
    shmb_wait w;
    char buf[64];
    size_t n = 0;
    uint32_t count = 0;
    int calls = 0, status = 0, fds[2];
    pid_t pid;

    CHECK_RC(shmb_framed_open_wait(name, SHMB_READ_ONLY, WAIT_MS(30), &rd), SHMB_TIMEOUT);
    CHECK(strstr(h_last_message(), "no segment with this name appeared") != NULL);
    CHECK_RC(shmb_framed_open_wait(name, SHMB_READ_ONLY, WAIT_MS(-2), &rd), SHMB_INVALID_ARGUMENT);
    shmb_wait_init(&w);
    CHECK(w.timeout_ms == SHMB_TIMEOUT_FOREVER && w.interrupt == NULL);
    w.interrupt = stop_on_second_call;
    w.interrupt_user = &calls;
    CHECK_RC(shmb_framed_open_wait(name, SHMB_READ_ONLY, &w, &rd), SHMB_ABORTED);
    CHECK(calls == 2 && rd == NULL);

    /* A child creates the segment a little later and publishes; the reader that started first
     * gets it, sleeping read-only on the futex; the child keeps it until told. */
    if (pipe(fds) != 0) exit(2);
    pid = fork();
    if (pid == 0) {
        shmb_framed *c = NULL;
        char go = 0;
        sleep_ms(100);
        if (shmb_framed_create(name, 64, 0, &c) != SHMB_OK) _exit(3);
        sleep_ms(200);
        if (shmb_framed_write(c, "from the child", 14) != SHMB_OK) _exit(4);
        if (read(fds[0], &go, 1) != 1) _exit(5);
        shmb_framed_free(c); /* the writer goes: its lock with it */
        _exit(0);
    }
    CHECK_OK(shmb_framed_open_wait(name, SHMB_READ_ONLY, WAIT_MS(30000), &rd));
    CHECK_OK(shmb_framed_wait(rd, 0, WAIT_MS(30000), &count));
    CHECK(count == 1);
    CHECK_OK(shmb_framed_read(rd, buf, sizeof buf, &n));
    CHECK(n == 14 && memcmp(buf, "from the child", 14) == 0);
    CHECK_OK(shmb_framed_header(rd, &hi));
    CHECK(hi.creator_alive && hi.creator_pid == (uint32_t)pid);
    CHECK((hi.flags & SHMB_FLAG_WAKE_ALWAYS) != 0); /* the writer saw the read-only waiter */
    /* The writer goes away: a reader waiting for another publish learns it at once. */
    CHECK(write(fds[1], "g", 1) == 1);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_RC(shmb_framed_wait(rd, count, WAIT_MS(30000), &count), SHMB_PEER_GONE);
    CHECK_OK(shmb_framed_header(rd, &hi));
    CHECK(!hi.creator_alive);
    shmb_framed_free(rd);
    close(fds[0]);
    close(fds[1]);
    CHECK_OK(shmb_remove(name));
}

static void test_truncated_raw_mapping(void) {
    const char *name = h_name(SUITE, "trunc");
    shmb_segment *seg = NULL;
    shmb_object *obj = NULL;
    uint32_t v = 0;
    char buf[4];
    CHECK_OK(shmb_segment_open(name, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 3 * 4096, 0, &seg));
    CHECK_OK(shmb_region_check(shmb_segment_region(seg)));
    CHECK_OK(shmb_object_open(name, SHMB_OPEN_ONLY, SHMB_READ_WRITE, 0, &obj));
    CHECK_OK(shmb_object_truncate(obj, 100));
    CHECK_RC(shmb_region_check(shmb_segment_region(seg)), SHMB_TRUNCATED);
    CHECK_RC(shmb_region_get_u32(shmb_segment_region(seg), 2 * 4096, &v), SHMB_TRUNCATED);
    CHECK_RC(shmb_region_read(shmb_segment_region(seg), 4096, buf, 4), SHMB_TRUNCATED);
    CHECK(strstr(h_last_message(), "truncated") != NULL);
    /* Bytes that are still there read fine (through the descriptor, never a SIGBUS). */
    CHECK_OK(shmb_region_read(shmb_segment_region(seg), 0, buf, 4));
    shmb_object_free(obj);
    shmb_segment_free(seg);
    CHECK_OK(shmb_remove(name));
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, len, f) == len);
        fclose(f);
    }
}

static void test_files(void) {
    char path[256], dir[] = "/tmp/shmb_t_c_XXXXXX";
    unsigned char pre[8 + 5] = {5, 0, 0, 0, 0, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'};
    shmb_file *f = NULL;
    shmb_region *r = NULL, *cow = NULL, *tmp = NULL;
    uint64_t size = 0, len = 0;
    char buf[16];
    size_t n = 0;
    FILE *fp;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/data.bin", dir);
    write_file(path, pre, sizeof pre);

    /* The seed's size-prefixed mmap reader, over a file. */
    CHECK_OK(shmb_map_file(path, SHMB_READ_ONLY, &r));
    CHECK(shmb_region_len(r) == 13);
    CHECK_OK(shmb_prefixed_len(r, &len));
    CHECK(len == 5);
    CHECK_RC(shmb_prefixed_read(r, buf, 2, &n), SHMB_BUFFER_TOO_SMALL);
    CHECK(n == 5);
    CHECK_OK(shmb_prefixed_read(r, buf, sizeof buf, &n));
    CHECK(n == 5 && memcmp(buf, "hello", 5) == 0);
    CHECK_RC(shmb_region_write(r, 0, "x", 1), SHMB_PERMISSION_DENIED);
    shmb_region_free(r);
    r = NULL;

    CHECK_OK(shmb_file_open(path, SHMB_READ_ONLY, &f));
    CHECK_OK(shmb_file_size(f, &size));
    CHECK(size == 13);
    CHECK_RC(shmb_file_map(f, SHMB_READ_WRITE, 0, 0, &tmp), SHMB_PERMISSION_DENIED);
    CHECK_RC(shmb_file_map(f, SHMB_READ_ONLY, 10, 4, &tmp), SHMB_OUT_OF_BOUNDS);
    CHECK_OK(shmb_file_map(f, SHMB_READ_ONLY, 8, 0, &r));
    CHECK(shmb_region_len(r) == 5 && memcmp(shmb_region_data(r), "hello", 5) == 0);
    CHECK_OK(shmb_file_map(f, SHMB_COPY_ON_WRITE, 0, 0, &cow));
    CHECK_OK(shmb_region_write(cow, 8, "HELLO", 5));
    CHECK(memcmp(shmb_region_data(r), "hello", 5) == 0); /* copy-on-write stays private */
    shmb_region_free(cow);
    shmb_region_free(r);
    shmb_file_free(f);

    /* Read-write: writes reach the file. */
    CHECK_OK(shmb_map_file(path, SHMB_READ_WRITE, &r));
    CHECK_OK(shmb_prefixed_write(r, "abc", 3));
    CHECK_RC(shmb_prefixed_write(r, "0123456789", 10), SHMB_OUT_OF_BOUNDS);
    CHECK_OK(shmb_region_flush(r));
    shmb_region_free(r);
    fp = fopen(path, "rb");
    CHECK(fp != NULL);
    if (fp) {
        CHECK(fread(buf, 1, 11, fp) == 11);
        CHECK(buf[0] == 3 && memcmp(buf + 8, "abc", 3) == 0);
        fclose(fp);
    }

    /* A size prefix that claims more than the file holds. */
    pre[0] = 200;
    write_file(path, pre, sizeof pre);
    CHECK_OK(shmb_map_file(path, SHMB_READ_ONLY, &r));
    CHECK_RC(shmb_prefixed_len(r, &len), SHMB_TRUNCATED);
    CHECK_RC(shmb_prefixed_read(r, buf, sizeof buf, &n), SHMB_TRUNCATED);
    shmb_region_free(r);
    r = NULL;

    /* Missing files, directories, empty paths and empty files. */
    CHECK_RC(shmb_map_file("/nonexistent/shmb_t_nothing", SHMB_READ_ONLY, &r), SHMB_NOT_FOUND);
    CHECK(shmb_last_error_errno() == ENOENT);
    CHECK_RC(shmb_map_file(dir, SHMB_READ_ONLY, &r), SHMB_INVALID_ARGUMENT);
    CHECK_RC(shmb_map_file("", SHMB_READ_ONLY, &r), SHMB_INVALID_ARGUMENT);
    CHECK(r == NULL);
    write_file(path, "", 0);
    CHECK_OK(shmb_map_file(path, SHMB_READ_ONLY, &r));
    CHECK(shmb_region_len(r) == 0);
    CHECK_RC(shmb_prefixed_len(r, &len), SHMB_TRUNCATED);
    shmb_region_free(r);
    remove(path);
    rmdir(dir);
}

/* The seed's mmap.mmap(-1, 100) + fork(): the child writes, the parent reads. */
static void test_anonymous_fork(void) {
    shmb_region *r = NULL;
    pid_t pid;
    int status = 0;
    char buf[100], want[100];
    CHECK_OK(shmb_region_anonymous(100, &r));
    CHECK(shmb_region_len(r) == 100 && shmb_region_writable(r));
    pid = fork();
    if (pid == 0) {
        memset(buf, 'a', sizeof buf);
        _exit(shmb_region_write(r, 0, buf, sizeof buf) == SHMB_OK ? 0 : 1);
    }
    CHECK(pid > 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    memset(want, 'a', sizeof want);
    CHECK_OK(shmb_region_read(r, 0, buf, sizeof buf));
    CHECK(memcmp(buf, want, sizeof buf) == 0);
    shmb_region_free(r);
}

static void test_listing(void) {
    const char *raw = h_name(SUITE, "lsraw");
    const char *fr = h_name(SUITE, "lsframed");
    shmb_segment *seg = NULL;
    shmb_framed *f = NULL;
    shmb_list *list = NULL;
    shmb_segment_info si;
    size_t i, n;
    int saw_raw = 0, saw_framed = 0;
    CHECK_OK(shmb_segment_open(raw, SHMB_CREATE_ONLY, SHMB_READ_WRITE, 300, 0640, &seg));
    CHECK_OK(shmb_framed_create(fr, 1000, 0, &f));
    CHECK_OK(shmb_framed_write(f, "xyz", 3));
    CHECK_OK(shmb_list_segments(&list));
    n = shmb_list_len(list);
    CHECK(n >= 2);
    for (i = 0; i < n; i++) {
        CHECK_OK(shmb_list_get(list, i, &si));
        if (strcmp(si.name, raw) == 0) {
            saw_raw = 1;
            CHECK(si.size == 300 && si.mode == 0640 && si.detected == SHMB_DETECTED_UNFRAMED);
            CHECK(si.uid == (uint32_t)getuid() && si.mtime_ns > 0);
        } else if (strcmp(si.name, fr) == 0) {
            saw_framed = 1;
            CHECK(si.size == 1128 && si.detected == SHMB_DETECTED_FRAMED);
            CHECK(si.header.payload_len == 3 && si.header.capacity == 1000);
        }
    }
    CHECK(saw_raw && saw_framed);
    CHECK_RC(shmb_list_get(list, n, &si), SHMB_OUT_OF_BOUNDS);
    shmb_list_free(list);
    shmb_framed_free(f);
    shmb_segment_free(seg);
    CHECK_OK(shmb_remove(raw));
    CHECK_OK(shmb_remove(fr));
}

int main(void) {
    h_init();
    test_version();
    test_boost_style_object();
    test_permissions();
    test_segment_typed_fields();
    test_bad_sizes();
    test_invalid_names();
    test_unknown_modes();
    test_null_arguments();
    test_messages();
    test_framed();
    test_framed_waiting();
    test_truncated_raw_mapping();
    test_files();
    test_anonymous_fork();
    test_listing();
    return h_report("test_abi");
}
