/* shmbridge.h compiles alone, as C, with nothing included before it. */
#include <shmbridge.h>

const char *shmb_test_header_c(void);
const char *shmb_test_header_c(void) { return SHMB_VERSION_STRING; }
