// shmbridge.hpp compiles alone, with nothing included before it.
#include <shmbridge.hpp>

const char* shmb_test_header_hpp() { return shmbridge::version(); }
