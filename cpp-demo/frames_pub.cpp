// frames_pub: a C++ camera stand-in that publishes 1080x1920x3 uint8 frames through a channel as
// array messages. Each frame's dtype and shape travel in its array header, so a reader in any
// language (python/examples/frames_view.py: numpy views, no copy) knows what it got.
//
//     frames_pub [--name shmb_frames] [--count 300] [--wait-readers 1] [--readers 2] [--slots 4]
//
// The writer waits until --wait-readers readers hold a place, then loans a slot per frame
// (loan_array<std::uint8_t>({1080, 1920, 3})), draws into it in place (a gradient with a bar
// that moves with the frame number; the first and the last byte hold the frame number's low
// byte, which the viewer checks), publishes
// it with the frame number as tag, closes the channel at the end and prints the frames per
// second. Under the block policy it runs at the pace of the slowest reader. The channel's name
// is removed at the end.
#include <shmbridge.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr std::uint64_t H = 1080, W = 1920, C = 3;

void usage() {
    std::fprintf(stderr,
                 "usage: frames_pub [--name NAME] [--count N] [--wait-readers R] [--readers R] "
                 "[--slots K]\n");
    std::exit(2);
}

// Draw frame `i` into the row-major H x W x 3 bytes at `px`.
void draw(std::uint8_t* px, std::uint64_t i) {
    const std::uint64_t bar = (i * 16) % W;
    for (std::uint64_t y = 0; y < H; ++y) {
        std::uint8_t* row = px + y * W * C;
        const auto g = static_cast<std::uint8_t>(y * 255 / (H - 1));
        for (std::uint64_t x = 0; x < W; ++x) {
            const bool on_bar = x >= bar && x < bar + 32;
            row[x * C + 0] = on_bar ? 255 : static_cast<std::uint8_t>(x * 255 / (W - 1));
            row[x * C + 1] = g;
            row[x * C + 2] = on_bar ? 0 : static_cast<std::uint8_t>(i);
        }
    }
    px[0] = px[H * W * C - 1] = static_cast<std::uint8_t>(i);
}

}  // namespace

int main(int argc, char** argv) {
    std::string name = "shmb_frames";  // python/examples/frames_view.py's default
    std::uint64_t count = 300;
    std::size_t wait_readers = 1;
    shmbridge::channel_options o;
    o.slots = 4;
    o.readers = 2;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) usage();
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--name") name = v;
        else if (k == "--count") count = std::stoull(v);
        else if (k == "--wait-readers") wait_readers = std::stoul(v);
        else if (k == "--readers") o.readers = static_cast<std::uint32_t>(std::stoul(v));
        else if (k == "--slots") o.slots = static_cast<std::uint32_t>(std::stoul(v));
        else usage();
    }
    // The header (64 + 3 x 16 bytes, rounded up to 128) and the pixels.
    o.max_message = 128 + H * W * C;
    try {
        shmbridge::channel_writer w(shmbridge::create_only, name, o);
        std::printf("frames_pub: channel %s, %llu frames of %llux%llux%llu uint8; waiting for %zu "
                    "reader(s)\n",
                    name.c_str(), static_cast<unsigned long long>(count),
                    static_cast<unsigned long long>(H), static_cast<unsigned long long>(W),
                    static_cast<unsigned long long>(C), wait_readers);
        std::fflush(stdout);
        while (w.status().places.size() < wait_readers) ::usleep(1000);
        const auto t0 = std::chrono::steady_clock::now();
        for (std::uint64_t i = 0; i < count; ++i) {
            auto frame = w.loan_array<std::uint8_t>({H, W, C});  // waits for a free slot
            draw(frame.data(), i);
            frame.publish(static_cast<std::uint32_t>(i));
        }
        w.close();
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("frames_pub: published %llu frames in %.3f s: %.1f frames/s\n",
                    static_cast<unsigned long long>(count), s, s > 0 ? count / s : 0.0);
    } catch (const shmbridge::error& e) {
        std::fprintf(stderr, "frames_pub: %s\n", e.what());
        shmbridge::channel_writer::remove(name.c_str());
        return 1;
    }
    shmbridge::channel_writer::remove(name.c_str());
    return 0;
}
