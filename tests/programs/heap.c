/* Fills many heap blocks — small ones from the brk heap and large ones above glibc's mmap
 * threshold (128 KiB) — with patterns, then every few ms verifies them all and churns:
 * frees some, allocates others of new sizes, reallocs, and checks that calloc memory is zero.
 * Prints "ready", then "ok N" per round; on a mismatch "BAD ..." and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define BLOCKS 400

struct block {
    uint8_t *data;
    size_t size;
    uint64_t seed;
};

static struct block blocks[BLOCKS];

static size_t size_for(unsigned index, uint64_t seed)
{
    uint64_t r = mix64(seed);
    switch (index % 20) {
    case 0:
    case 10:
        return 130 * 1024 + r % (256 * 1024); /* above the mmap threshold */
    case 1:
        return 2 * 1024 * 1024 + r % 4096; /* big mmap */
    case 5:
    case 15:
        return 16 * 1024 + r % (48 * 1024); /* medium, from the heap */
    default:
        return 1 + r % 1024; /* small */
    }
}

static uint8_t byte_at(uint64_t seed, size_t offset)
{
    return (uint8_t)(seed * 0x9e3779b1u + offset * 131 + (offset >> 9));
}

static void fill(struct block *b)
{
    for (size_t i = 0; i < b->size; i++)
        b->data[i] = byte_at(b->seed, i);
}

static void allocate(unsigned index, uint64_t seed)
{
    struct block *b = &blocks[index];
    b->seed = seed;
    b->size = size_for(index, seed);
    b->data = malloc(b->size);
    if (!b->data) {
        printf("BAD malloc(%zu) failed\n", b->size);
        fflush(stdout);
        exit(1);
    }
    fill(b);
}

static void verify(unsigned long round)
{
    for (unsigned index = 0; index < BLOCKS; index++) {
        struct block *b = &blocks[index];
        for (size_t i = 0; i < b->size; i++) {
            if (b->data[i] != byte_at(b->seed, i)) {
                printf("BAD round %lu: block %u (%zu bytes at %p) differs at offset %zu: "
                       "%#x, expected %#x\n",
                       round, index, b->size, (void *)b->data, i, b->data[i],
                       byte_at(b->seed, i));
                fflush(stdout);
                exit(1);
            }
        }
    }
}

static void check_calloc(unsigned long round, size_t count, size_t size)
{
    uint8_t *zeroed = calloc(count, size);
    if (!zeroed) {
        printf("BAD round %lu: calloc(%zu, %zu) failed\n", round, count, size);
        fflush(stdout);
        exit(1);
    }
    for (size_t i = 0; i < count * size; i++) {
        if (zeroed[i] != 0) {
            printf("BAD round %lu: calloc(%zu, %zu) memory not zero at %zu\n", round, count,
                   size, i);
            fflush(stdout);
            exit(1);
        }
    }
    memset(zeroed, 0xa5, count * size);
    free(zeroed);
}

int main(void)
{
    for (unsigned index = 0; index < BLOCKS; index++)
        allocate(index, index);
    puts("ready");
    fflush(stdout);

    for (unsigned long round = 1;; round++) {
        verify(round);
        for (unsigned k = 0; k < 25; k++) {
            unsigned index = (unsigned)((round * 37 + k * 13) % BLOCKS);
            free(blocks[index].data);
            allocate(index, mix64(round * 100 + k));
        }
        /* Grow one small block in place or by moving it; its old contents must follow. */
        struct block *b = &blocks[(round * 7) % BLOCKS];
        size_t old_size = b->size;
        uint8_t *grown = realloc(b->data, old_size + 5000);
        if (!grown) {
            printf("BAD round %lu: realloc failed\n", round);
            fflush(stdout);
            exit(1);
        }
        b->data = grown;
        b->size = old_size + 5000;
        for (size_t i = old_size; i < b->size; i++)
            b->data[i] = byte_at(b->seed, i);

        check_calloc(round, 100, 8);
        check_calloc(round, 1, 300 * 1024);

        printf("ok %lu\n", round);
        fflush(stdout);
        sleep_ms(5);
    }
}
