#!/usr/bin/env python3
"""How steady and how fast a checkpoint's write is, against dd in the same run.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/writes.py            # 1 GiB
    python3 benches/writes.py 256 1024   # these sizes (MiB)

For each size it prints, over RUNS runs after a warm-up, the median and the spread (fastest
and slowest run) of:
  - dd writing the same bytes into a new file, without and with fsync (the references);
  - the checkpoint that ends the program, durable (the default) and with CKPT_FSYNC=0: from
    the checkpoint signal until the file is renamed into place;
  - with CKPT_CONTINUE=1 (a forked copy-on-write child writes the image while the program
    goes on): until the file is complete, and the program's pause, for a program that only
    spins and for one that keeps writing every page of its memory in turn ("dirty": each
    first write after the fork copies the page); and the same with CKPT_FORK=0 (written
    in the program's own signal handler).
Ratios are against dd with fsync for durable rows and without for CKPT_FSYNC=0 rows.
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the shared helpers: Program, RenameWatch, floor, ...)

RUNS = 5


def spread(measure_once):
    """(median, fastest, slowest) of RUNS runs after a warm-up; for tuples, of each field."""
    measure_once()
    runs = [measure_once() for _ in range(RUNS)]
    if isinstance(runs[0], tuple):
        return tuple((statistics.median(f), min(f), max(f)) for f in zip(*runs))
    return statistics.median(runs), min(runs), max(runs)


def dd_time(workdir, mib, fsync):
    path = os.path.join(workdir, "dd.out")
    if os.path.exists(path):
        os.unlink(path)
    cmd = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}"]
    return bench.timed(cmd + (["conv=fsync"] if fsync else []))


def continued_checkpoint(workdir, mib, mode, **env):
    """With CKPT_CONTINUE=1: (seconds until the image is renamed into place, the longest
    pause the program saw)."""
    image = os.path.join(workdir, "workload.ckpt")
    if os.path.exists(image):
        os.unlink(image)
    args = [str(mib)] + ([mode] if mode else [])
    w = bench.Program(workdir, "workload", args, bench.env_with(CKPT_CONTINUE=1, **env))
    watch = bench.RenameWatch(workdir)
    os.sync()
    t0 = time.perf_counter()
    w.proc.send_signal(signal.SIGTSTP)
    complete = watch.wait_for("workload.ckpt") - t0
    watch.close()
    w.proc.send_signal(signal.SIGUSR1)
    out = w.proc.stdout.read()
    w.wait()
    for line in out.splitlines():
        if line.startswith("pause "):
            return complete, int(line.split()[1]) / 1e9
    bench.die(f"no pause reported: {out!r}")


def row(label, stats, reference=None, unit="ms"):
    median, low, high = stats
    ratio = f"{median / reference:6.2f} x" if reference else " " * 8
    print(f"  {label:<38} {median * 1000:8.1f} {unit}  {ratio}   "
          f"[{low * 1000:.1f} .. {high * 1000:.1f}]")


def measure(workdir, mib):
    dd = spread(lambda: dd_time(workdir, mib, False))
    dd_sync = spread(lambda: dd_time(workdir, mib, True))
    os.unlink(os.path.join(workdir, "dd.out"))
    durable = spread(lambda: bench.checkpoint_time(workdir, mib, [])[0])
    fast = spread(lambda: bench.checkpoint_time(workdir, mib, [], CKPT_FSYNC=0)[0])
    forked = {}
    for mode in [None, "dirty"]:
        for fork in ["1", "0"]:
            forked[(mode, fork)] = spread(
                lambda: continued_checkpoint(workdir, mib, mode, CKPT_FORK=fork))
    print(f"\n== {mib} MiB  (median of {RUNS} after a warm-up, [fastest .. slowest])")
    row("dd, no fsync", dd)
    row("dd conv=fsync", dd_sync)
    row("checkpoint, durable", durable, dd_sync[0])
    row("checkpoint, CKPT_FSYNC=0", fast, dd[0])
    for (mode, fork), (complete, pause) in forked.items():
        who = "forked writer" if fork == "1" else "CKPT_FORK=0"
        what = "writing its memory" if mode else "spinning"
        row(f"-c, {who}, {what}: complete", complete, dd_sync[0])
        row(f"-c, {who}, {what}: pause", pause)


def main():
    if not os.path.exists(bench.CKPT):
        bench.die("build first: cargo build --release --workspace")
    sizes = [int(a) for a in sys.argv[1:]] or [1024]
    workdir = tempfile.mkdtemp(prefix="ckpt-writes-", dir=os.environ.get("CKPT_BENCH_DIR"))
    try:
        subprocess.run(["cc", "-O2", "-o", os.path.join(workdir, "workload"),
                        os.path.join(bench.ROOT, "benches", "workload.c")], check=True)
        print(f"ckpt write benchmark; files in {workdir}")
        for mib in sizes:
            measure(workdir, mib)
    finally:
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
