#!/usr/bin/env python3
"""ckpt's restart benchmark: the eager restart against the floors of filling memory.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/restart.py            # 256 MiB and 1 GiB
    python3 benches/restart.py 64 512     # these sizes (MiB)

For each size it checkpoints the workload once (benches/workload.c, dense memory that did
not ask for huge pages) and measures, each the median of five runs after a warm-up, in the
same run:
  - the eager restart: from starting the checkpoint file to the resumed program's restart
    hook (as in bench.py), as by default (the stub gives the huge-page fill up when the
    kernel gives small pages or gives them slowly) and with CKPT_HUGE_FILL=1 (never given
    up);
  - the same restart with userfaultfd refused by a seccomp filter (tests/programs/refuse.c),
    which makes the stub read in place in small pages: the restart as it was before the
    huge-page fill, and what it is on a kernel without UFFDIO_MOVE;
  - the fill floors: fresh anonymous memory, with and without MADV_HUGEPAGE, with the
    checkpoint file pread into it (benches/fill_floor.c);
and prints the restarts as ratios of the floors.
"""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CKPT, ROOT, TIMEOUT, checkpoint_time, die, fmt_t, steady  # noqa: E402
from bench import restart_time as bench_restart_time  # noqa: E402


def restart_time(workdir, prefix=(), **env):
    """The eager restart of workload.ckpt, behind `prefix`, with `env`."""
    return bench_restart_time(workdir, False, prefix=prefix, **env)


def fill_floor(workdir, how):
    out = subprocess.run([os.path.join(workdir, "fill_floor"),
                          os.path.join(workdir, "workload.ckpt"), how],
                         check=True, capture_output=True, text=True, timeout=TIMEOUT).stdout
    return int(out.split()[1]) / 1e9


def measure(workdir, mib):
    steady(lambda: checkpoint_time(workdir, mib, [], CKPT_FSYNC=0))
    refuse = [os.path.join(workdir, "refuse"), "userfaultfd"]
    eager = steady(lambda: restart_time(workdir))
    always = steady(lambda: restart_time(workdir, CKPT_HUGE_FILL=1))
    small_path = steady(lambda: restart_time(workdir, refuse))
    small = steady(lambda: fill_floor(workdir, "small"))
    huge = steady(lambda: fill_floor(workdir, "huge"))
    print(f"\n== {mib} MiB")
    print(f"  fill floor, 4 KiB pages         {fmt_t(small)}")
    print(f"  fill floor, MADV_HUGEPAGE       {fmt_t(huge)}   {small / huge:5.2f} x faster")
    print(f"  restart, eager                  {fmt_t(eager)}   {eager / huge:5.2f} x huge floor"
          f"   {eager / small:5.2f} x small floor")
    print(f"  restart, eager, CKPT_HUGE_FILL=1 {fmt_t(always)}   {always / huge:5.2f} x huge floor"
          f"   {always / small:5.2f} x small floor")
    print(f"  restart, eager, no userfaultfd  {fmt_t(small_path)}   {small_path / huge:5.2f} x huge floor"
          f"   {small_path / small:5.2f} x small floor")


def main():
    if not os.path.exists(CKPT):
        die("build first: cargo build --release --workspace")
    sizes = [int(a) for a in sys.argv[1:]] or [256, 1024]
    thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
    workdir = tempfile.mkdtemp(prefix="ckpt-restart-", dir=os.environ.get("CKPT_BENCH_DIR"))
    try:
        for name, source in [("workload", "benches/workload.c"), ("fill_floor", "benches/fill_floor.c"),
                             ("refuse", "tests/programs/refuse.c")]:
            subprocess.run(["cc", "-O2", "-o", os.path.join(workdir, name),
                            os.path.join(ROOT, source)], check=True)
        print(f"ckpt restart benchmark: median of 5 runs after a warm-up; THP {thp}; "
              f"files in {workdir}")
        for mib in sizes:
            measure(workdir, mib)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
