/* Memory that a fork does not copy as it is: 1 MiB filled with a pattern and marked with
 * madvise(argv[1]: "dontfork" or "wipeonfork"). Prints "ready", then per tick
 * "tick N intact", "tick N zero" (all of it zero, as a fork's child sees WIPEONFORK memory)
 * or "tick N BAD" (anything else). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

#define SIZE (1UL << 20)

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int advice = argc > 1 && strcmp(argv[1], "wipeonfork") == 0 ? MADV_WIPEONFORK : MADV_DONTFORK;
    uint64_t *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || madvise(p, SIZE, advice) != 0) {
        printf("BAD setup\n");
        return 1;
    }
    size_t words = SIZE / 8;
    for (size_t i = 0; i < words; i++)
        p[i] = mix64(i);
    printf("ready\n");
    for (unsigned long tick = 1;; tick++) {
        size_t same = 0, zero = 0;
        for (size_t i = 0; i < words; i++) {
            same += p[i] == mix64(i);
            zero += p[i] == 0;
        }
        printf("tick %lu %s\n", tick, same == words ? "intact" : zero == words ? "zero" : "BAD");
        sleep_ms(10);
    }
}
