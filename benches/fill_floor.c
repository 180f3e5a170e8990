/* fill_floor FILE huge|small: the floor of an eager restart. Maps fresh anonymous memory
 * the size of FILE (with MADV_HUGEPAGE for "huge", aligned to 2 MiB) and preads FILE into
 * it in 1 MiB chunks, as the restart stub does; prints "fill <ns>" for the mmap, advice and
 * reads together. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HUGE_PAGE (2UL << 20)

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int huge = strcmp(argv[2], "huge") == 0;
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return 1;
    size_t len = ((size_t)st.st_size + 4095) & ~(size_t)4095;
    uint64_t t0 = now_ns();
    char *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (raw == MAP_FAILED)
        return 1;
    char *p = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
    if (huge)
        madvise(p, len, MADV_HUGEPAGE);
    for (size_t done = 0; done < (size_t)st.st_size;) {
        size_t n = (size_t)st.st_size - done < (1u << 20) ? (size_t)st.st_size - done : 1u << 20;
        ssize_t r = pread(fd, p + done, n, (off_t)done);
        if (r <= 0)
            return 1;
        done += (size_t)r;
    }
    printf("fill %llu\n", (unsigned long long)(now_ns() - t0));
    return 0;
}
