// Links the translation units that each include one header alone, and checks they agree.
#include <cstdio>
#include <cstring>

extern "C" const char* shmb_test_header_c(void);
const char* shmb_test_header_h_cxx();
const char* shmb_test_header_hpp();

int main() {
    const bool ok = std::strcmp(shmb_test_header_c(), shmb_test_header_h_cxx()) == 0 &&
                    std::strcmp(shmb_test_header_h_cxx(), shmb_test_header_hpp()) == 0;
    std::printf("headers alone: C, C as C++, C++ wrapper: %s\n", ok ? "ok" : "MISMATCH");
    return ok ? 0 : 1;
}
