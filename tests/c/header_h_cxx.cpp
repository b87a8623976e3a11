// shmbridge.h compiles alone as C++ too.
#include <shmbridge.h>

const char* shmb_test_header_h_cxx() { return shmb_version(); }
