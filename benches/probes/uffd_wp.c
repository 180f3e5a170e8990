// Probe: userfaultfd write-protect tracking (user-mode-only, WP_ASYNC) + PAGEMAP_SCAN's
// written bit, as ckpt's incremental checkpoints use them. Build: cc -O2 -o uffd_wp uffd_wp.c
// Run: ./uffd_wp [MiB]  (THP=1 to leave transparent huge pages on)
//
// Measured on kernel 6.18, 1 GiB populated, root and nobody alike (setpriv --reuid=65534):
// - register 0.01 ms; UFFDIO_WRITEPROTECT of the whole GiB 13-14 ms (THP on or off).
// - first write to a protected page: ~0.9 us (async: resolved in the kernel, no handler);
//   a second write 0.02 us. 1% of pages = 2621 writes = ~2.4 ms over a whole interval.
// - PAGEMAP_SCAN(PAGE_IS_WRITTEN) of the GiB: 0.3-0.5 ms; with PM_SCAN_WP_MATCHING it
//   re-protects what it reports in the same call (0.55 ms), and the next scan reports 0.
// - Conservative where it matters: MADV_DONTNEED'd pages and never-protected pages report
//   written; a fresh page of an unpopulated protected range reports written.
// - fork: the parent keeps "uw" and sees its copy-on-write writes (also while the child
//   lives); the child has no "uw" (no UFFD_FEATURE_EVENT_FORK) and tracks nothing.
// - mprotect round trips keep the registration (VMA split keeps "uw"); mremap (move or
//   grow) and munmap+mmap drop it: PM_SCAN_CHECK_WPASYNC then fails (EPERM) = "all changed".
// - close(uffd) drops every registration: the descriptor must stay open.
// - A program's own uffd on a range we registered gets EBUSY, and we get EBUSY on one of
//   its own: the two exclude each other (documented limitation; CKPT_INCREMENTAL=0).
// - VmFlags shows "uw"; ckpt's VM_FLAGS list does not carry it, so it is never saved.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define F_WP_UNPOPULATED (1ULL << 13)
#define F_WP_ASYNC (1ULL << 15)
#define PM_SCAN_WP_MATCHING (1ULL << 0)
#define PM_SCAN_CHECK_WPASYNC (1ULL << 1)
#define PAGE_IS_WRITTEN (1ULL << 1)
#define PAGE_IS_PRESENT (1ULL << 3)
#define PAGEMAP_SCAN 0xc0606610UL

struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int pm;
static struct page_region vec[1 << 16];
#define PG 4096UL

static int open_uffd(uint64_t features) {
  int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  if (fd < 0) { perror("userfaultfd"); return -1; }
  struct uffdio_api api = { .api = UFFD_API, .features = features };
  if (ioctl(fd, UFFDIO_API, &api)) { perror("UFFDIO_API"); close(fd); return -1; }
  return fd;
}

#include <errno.h>
static int reg_wp(int fd, void *p, size_t len) {
  struct uffdio_register r = { .range = { (uint64_t)p, len }, .mode = UFFDIO_REGISTER_MODE_WP };
  return ioctl(fd, UFFDIO_REGISTER, &r) ? -errno : 0;
}
static int protect(int fd, void *p, size_t len) {
  struct uffdio_writeprotect w = { .range = { (uint64_t)p, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
  return ioctl(fd, UFFDIO_WRITEPROTECT, &w) ? -errno : 0;
}
// Written pages of [p, p+len), re-protecting them (WP_MATCHING) when reset is set; returns
// pages written, or -errno.
static long scan(void *p, size_t len, int reset, long *ranges) {
  long pages = 0, nr = 0;
  uint64_t at = (uint64_t)p, end = at + len;
  while (at < end) {
    struct pm_scan_arg a = { .size = sizeof a, .flags = PM_SCAN_CHECK_WPASYNC | (reset ? PM_SCAN_WP_MATCHING : 0),
      .start = at, .end = end, .vec = (uint64_t)vec, .vec_len = 1 << 16,
      .category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN };
    long got = ioctl(pm, PAGEMAP_SCAN, &a);
    if (got < 0) return -errno;
    for (long i = 0; i < got; i++) pages += (vec[i].end - vec[i].start) / PG;
    nr += got;
    if (got < (1 << 16)) break;
    at = vec[got - 1].end;
  }
  if (ranges) *ranges = nr;
  return pages;
}
static void vmflags(const char *what, void *p) {
  FILE *f = fopen("/proc/self/smaps", "r"); char line[512]; int in = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ' ') && line[strcspn(line, " ")-0] ) { in = (uint64_t)p >= lo && (uint64_t)p < hi; continue; }
    if (in && !strncmp(line, "VmFlags:", 8)) printf("  %s VmFlags:%s", what, line + 8);
  }
  fclose(f);
}

int main(int argc, char **argv) {
  size_t len = (argc > 1 ? atol(argv[1]) : 1024) << 20;
  size_t npages = len / PG;
  pm = open("/proc/self/pagemap", O_RDONLY);
  printf("uid %d, %zu MiB\n", getuid(), len >> 20);
  int u = open_uffd(F_WP_ASYNC | F_WP_UNPOPULATED);
  if (u < 0) return 1;
  char *m = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (!getenv("THP")) madvise(m, len, MADV_NOHUGEPAGE);
  for (size_t i = 0; i < len; i += PG) m[i] = 1;
  double t0 = now();
  int e = reg_wp(u, m, len);
  double t1 = now();
  int e2 = protect(u, m, len);
  double t2 = now();
  printf("register %d: %.3f ms; protect all %d: %.3f ms\n", e, (t1 - t0) * 1e3, e2, (t2 - t1) * 1e3);
  vmflags("registered", m);
  long r; double t3 = now(); long w = scan(m, len, 0, &r); double t4 = now();
  printf("scan right after protect: %ld written (%ld ranges) %.3f ms\n", w, r, (t4 - t3) * 1e3);
  // 1% of pages, at random.
  size_t k = npages / 100; size_t *idx = malloc(k * sizeof *idx);
  srand(1); for (size_t i = 0; i < k; i++) idx[i] = ((size_t)rand() * 7919 + rand()) % npages;
  t3 = now(); for (size_t i = 0; i < k; i++) m[idx[i] * PG + 8] = 2; t4 = now();
  double first = (t4 - t3) / k;
  t3 = now(); for (size_t i = 0; i < k; i++) m[idx[i] * PG + 16] = 3; t4 = now();
  printf("first write per page %.3f us, second %.3f us (%zu pages)\n", first * 1e6, (t4 - t3) / k * 1e6, k);
  t3 = now(); w = scan(m, len, 0, &r); t4 = now();
  printf("scan (no reset): %ld written (%ld ranges) %.3f ms\n", w, r, (t4 - t3) * 1e3);
  t3 = now(); w = scan(m, len, 1, &r); t4 = now();
  printf("scan+reprotect: %ld written %.3f ms\n", w, (t4 - t3) * 1e3);
  t3 = now(); w = scan(m, len, 1, &r); t4 = now();
  printf("scan again: %ld written %.3f ms\n", w, (t4 - t3) * 1e3);

  // Unpopulated, zapped, and zero-page pages.
  madvise(m, 16 * PG, MADV_DONTNEED);
  printf("after MADV_DONTNEED of 16 pages: %ld written\n", scan(m, len, 0, 0));
  volatile char c = m[0]; (void)c;
  printf("after reading one zapped page: %ld written\n", scan(m, len, 0, 0));
  m[PG] = 5;
  printf("after writing one zapped page: %ld written\n", scan(m, len, 1, 0));
  char *fresh = mmap(0, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  reg_wp(u, fresh, 64 * PG); protect(u, fresh, 64 * PG);
  fresh[3 * PG] = 1;
  printf("unpopulated region, one page written: %ld written\n", scan(fresh, 64 * PG, 1, 0));
  char *noprot = mmap(0, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  reg_wp(u, noprot, 64 * PG);
  printf("registered but never protected, untouched: %ld written\n", scan(noprot, 64 * PG, 0, 0));

  // fork: does the child keep the registration? does the parent?
  int pfd[2]; pipe(pfd);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    vmflags("child", m);
    long cw = scan(m, len, 0, 0);
    m[100 * PG] = 9;
    printf("  child: scan %ld (negative = -errno); after a write: %ld\n", cw, scan(m, len, 0, 0)); fflush(stdout);
    _exit(0);
  }
  waitpid(pid, 0, 0);
  vmflags("parent after fork", m);
  m[200 * PG] = 9; m[201 * PG] = 9;
  printf("parent after fork, 2 pages written (COW): %ld written\n", scan(m, len, 1, 0));
  // A fork while the child lives: parent writes during child life.
  pid = fork();
  if (pid == 0) { sleep(1); _exit(0); }
  m[300 * PG] = 9;
  printf("parent with live child, 1 page written: %ld written\n", scan(m, len, 1, 0));
  waitpid(pid, 0, 0);

  // The program's own userfaultfd on our region, and on its own region.
  int mine = open_uffd(0);
  printf("program's own uffd registering our region (missing mode): ");
  struct uffdio_register rr = { .range = { (uint64_t)fresh, 64 * PG }, .mode = UFFDIO_REGISTER_MODE_MISSING };
  printf("%s\n", ioctl(mine, UFFDIO_REGISTER, &rr) ? strerror(errno) : "ok");
  char *its = mmap(0, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  rr.range.start = (uint64_t)its;
  ioctl(mine, UFFDIO_REGISTER, &rr);
  printf("our uffd registering the program's region: %s\n", reg_wp(u, its, 64 * PG) ? strerror(-reg_wp(u, its, 64 * PG)) : "ok");
  printf("scan of the program's region: %ld\n", scan(its, 64 * PG, 0, 0));

  // mprotect, mremap, munmap+mmap.
  mprotect(m + 1000 * PG, 10 * PG, PROT_READ);
  vmflags("mprotect'ed part", m + 1000 * PG);
  mprotect(m + 1000 * PG, 10 * PG, PROT_READ | PROT_WRITE);
  m[1005 * PG] = 1;
  printf("after mprotect round trip + 1 write: %ld written\n", scan(m, len, 1, 0));
  char *moved = mremap(fresh, 64 * PG, 64 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, m + len + 1024 * PG);
  if (moved == MAP_FAILED) perror("mremap"); else {
    vmflags("moved", moved);
    moved[5 * PG] = 1;
    printf("moved region, 1 write: %ld written\n", scan(moved, 64 * PG, 1, 0));
  }
  char *grown = mremap(moved, 64 * PG, 128 * PG, 0);
  if (grown == MAP_FAILED) perror("mremap grow"); else {
    vmflags("grown", grown);
    printf("grown region scan (new part untouched): %ld\n", scan(grown, 128 * PG, 0, 0));
  }
  munmap(noprot, 64 * PG);
  char *again = mmap(noprot, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  again[0] = 1;
  vmflags("remapped", again);
  printf("munmap + mmap at same place, scan: %ld\n", scan(again, 64 * PG, 0, 0));
  // Closing the uffd: registration goes?
  close(u);
  vmflags("after close(uffd)", m);
  printf("scan after close: %ld\n", scan(m, len, 0, 0));
  return 0;
}
