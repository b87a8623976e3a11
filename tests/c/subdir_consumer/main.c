#include <shmbridge.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    shmb_region *r = NULL;
    if (shmb_region_anonymous(16, &r) != SHMB_OK) return 1;
    memcpy(shmb_region_data(r), "subdir", 7);
    printf("add_subdirectory C consumer: %s, library %s\n", (const char *)shmb_region_data(r),
           shmb_version());
    shmb_region_free(r);
    return strcmp(shmb_version(), SHMB_VERSION_STRING) == 0 ? 0 : 1;
}
