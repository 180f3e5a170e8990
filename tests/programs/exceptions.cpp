/* C++ exceptions through a checkpoint: every round throws from a few frames deep (through a
 * destructor that must run) and catches it; prints "ready", then "ok N" per round, or "BAD …"
 * when an exception is not caught as it should be. Unwinding uses libgcc_s and libstdc++,
 * which libckpt must leave alone. */
#include <cstdio>
#include <stdexcept>
#include <string>

extern "C" {
#include "common.h"
}

static int destroyed;

struct Guard {
    ~Guard() { destroyed++; }
};

static int deep(int n)
{
    Guard g;
    if (n == 0)
        throw std::runtime_error("deep " + std::to_string(destroyed));
    return deep(n - 1) + 1;
}

int main()
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("ready\n");
    for (unsigned long round = 1;; round++) {
        int before = destroyed, depth = (int)(round % 7);
        std::string what;
        try {
            deep(depth);
        } catch (const std::runtime_error &e) {
            what = e.what();
        }
        if (what != "deep " + std::to_string(before) || destroyed != before + depth + 1) {
            std::printf("BAD round %lu: caught \"%s\", %d destructors run\n", round, what.c_str(),
                        destroyed - before);
            return 1;
        }
        std::printf("ok %lu\n", round);
        sleep_ms(5);
    }
}
