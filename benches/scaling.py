#!/usr/bin/env python3
"""How the cost of a checkpoint and a restart grows: with memory, and with threads.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/scaling.py                     # 16 MiB to 4 GiB; 1, 16, 256 threads
    python3 benches/scaling.py 16 256 1024         # these sizes (MiB)

For each size of touched memory (benches/workload.c), the median of three runs after a
warm-up of: the durable checkpoint (signal to rename), the pause with CKPT_CONTINUE=1, and
the eager and lazy restart (start to the restart hook), each beside its physical
reference measured in the same run (dd with fsync writing as many bytes; reading the
checkpoint file from the page cache) and the ratios to them (the checkpoint and dd run in
turn, see `alternated`); then the slope per GiB of
each (a least-squares line through the sizes from 256 MiB up, where fixed costs no longer
dominate) beside the references' slopes. Then the same three with 1, 16 and 256 threads (benches/threads.c)
touching 256 MiB together.
"""

import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import threads  # noqa: E402

RUNS = 3
THREADS = [1, 16, 256]
THREADS_MIB = 256


def steady(measure_once):
    measure_once()
    return statistics.median(measure_once() for _ in range(RUNS))


def alternated(first, second):
    """(median of `first`, median of `second`), their runs taken in turn after a warm-up of
    each: this VM's disk slows down for minutes after gigabytes of writes (4 GiB with fsync
    took 8.8 s, then 9.5, 10.3, 11.8 in four runs a minute apart), so whichever of two
    write-bound measures ran second, all its runs after all the other's, lost."""
    first()
    second()
    a, b = [], []
    for _ in range(RUNS):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def dd_sync(workdir, mib):
    path = os.path.join(workdir, "dd.out")
    if os.path.exists(path):
        os.unlink(path)
    t = bench.timed(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}", "conv=fsync"])
    os.unlink(path)
    return t


def page_cache_read(path):
    return bench.timed(["dd", f"if={path}", "of=/dev/null", "bs=1M"])


def slope(points):
    """Least-squares slope of (GiB, seconds) points: seconds per GiB."""
    xs, ys = zip(*points)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def ms(t):
    return f"{t * 1000:9.1f} ms"


def memory(workdir, sizes):
    print(f"\n== memory (median of {RUNS} runs after a warm-up)")
    print(f"  {'MiB':>6} {'checkpoint':>12} {'dd+fsync':>12} {'ratio':>6} {'pause (-c)':>12}"
          f" {'eager':>12} {'lazy':>12} {'read':>12} {'ratio':>6}")
    rows = []
    image = os.path.join(workdir, "workload.ckpt")
    for mib in sizes:
        durable, reference = alternated(lambda: bench.checkpoint_time(workdir, mib, [])[0],
                                        lambda: dd_sync(workdir, mib))
        eager = steady(lambda: bench.restart_time(workdir, False))
        lazy = steady(lambda: bench.restart_time(workdir, True))
        read = steady(lambda: page_cache_read(image))
        pause = steady(lambda: bench.pause_time(workdir, mib, []))
        rows.append((mib, durable, reference, pause, eager, lazy, read))
        print(f"  {mib:>6} {ms(durable)} {ms(reference)} {durable / reference:5.2f}x"
              f" {ms(pause)} {ms(eager)} {ms(lazy)} {ms(read)} {eager / read:5.2f}x", flush=True)
    large = [r for r in rows if r[0] >= 256]
    if len(large) < 2:
        return
    per_gib = [slope([(r[0] / 1024, r[i]) for r in large]) for i in range(1, 7)]
    names = ["checkpoint", "dd+fsync", "pause (-c)", "eager restart", "lazy restart",
             "page-cache read"]
    print("  per GiB (slope from 256 MiB up):")
    for name, value in zip(names, per_gib):
        print(f"    {name:<16} {ms(value)}")
    durable, reference, pause, eager, lazy, read = per_gib
    print(f"    checkpoint / dd+fsync {durable / reference:5.2f} x;"
          f"  eager restart / page-cache read {eager / read:5.2f} x")


def thread_counts(workdir):
    print(f"\n== threads, {THREADS_MIB} MiB touched in all (median of {RUNS} after a warm-up)")
    base = None
    for n in THREADS:
        durable = steady(lambda: threads.checkpoint_time(workdir, n, THREADS_MIB))
        eager = steady(lambda: bench.restart_time(workdir, False, "threads.ckpt"))
        pause = steady(lambda: threads.pause_time(workdir, n, THREADS_MIB)[0])
        base = base or (durable, pause, eager)
        print(f"  {n:>3} threads  checkpoint {ms(durable)} ({durable / base[0]:4.2f} x)"
              f"  pause {ms(pause)} ({pause / base[1]:5.2f} x)"
              f"  eager restart {ms(eager)} ({eager / base[2]:4.2f} x)", flush=True)


def main():
    if not os.path.exists(bench.CKPT):
        bench.die("build first: cargo build --release --workspace")
    sizes = [int(a) for a in sys.argv[1:]] or [16, 64, 256, 1024, 4096]
    workdir = tempfile.mkdtemp(prefix="ckpt-scaling-", dir=os.environ.get("CKPT_BENCH_DIR"))
    try:
        for name, flags in [("workload", []), ("threads", ["-pthread"])]:
            subprocess.run(["cc", "-O2", *flags, "-o", os.path.join(workdir, name),
                            os.path.join(bench.ROOT, "benches", f"{name}.c")], check=True)
        print(f"ckpt scaling benchmark; files in {workdir}")
        memory(workdir, sizes)
        thread_counts(workdir)
    finally:
        subprocess.run(["rm", "-rf", workdir])


if __name__ == "__main__":
    main()
