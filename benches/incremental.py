#!/usr/bin/env python3
"""Incremental checkpoints: a full checkpoint against one that writes only the changed pages.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/incremental.py          # 1 GiB, 1% of its pages changed
    python3 benches/incremental.py 256      # this size (MiB)

A program with the given memory (every page written) runs under ckpt with CKPT_CONTINUE=1
(a forked writer). It is checkpointed, then writes one word in 1% of its pages, chosen at
random, and is checkpointed again, and once more, each timed from the checkpoint signal
until the file is in place (inotify). The first checkpoint starts the tracking, the
second is written anew (there is no spare yet: it keeps the first as NAME.prev), the third
is the first written into the spare in place — the pages changed over two intervals, 2%
— and is the one measured: with CKPT_INCREMENTAL=0 (full) and =1, durable (fsync, the
default) and with CKPT_FSYNC=0; each the median of five runs after a warm-up. The ratio
incremental / full is the goal's measure (<= 10%); dd writing the changed pages' worth of
bytes (2%) is the physical reference. Then, once, a chain of 8 checkpoints: from the third
on each is written in place. Set CKPT_BENCH_DIR to run on another file system.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the shared helpers: Program, RenameWatch, env_with, steady)

NAME = "incremental.ckpt"
CHAIN = 8


def checkpoint(workdir, w, watch):
    """Time from the checkpoint signal until the file is renamed into place; then waits for
    the writer to have exited (the next checkpoint would wait for it)."""
    os.sync()
    t0 = time.perf_counter()
    w.proc.send_signal(signal.SIGTSTP)
    t = watch.wait_for(NAME) - t0
    time.sleep(0.3)
    return t


def chain(workdir, mib, incremental, fsync, rounds):
    """(first checkpoint, [each of `rounds` checkpoints, each after 1% of the pages changed],
    [bytes each kept from the file it was written over])."""
    image = os.path.join(workdir, NAME)
    for old in [image, image + ".prev"]:
        if os.path.exists(old):
            os.unlink(old)
    env = bench.env_with(CKPT_CONTINUE=1, CKPT_INCREMENTAL=int(incremental),
                         CKPT_FSYNC=int(fsync), CKPT_NAME=image)
    w = bench.Program(workdir, "incremental", [str(mib)], env)
    watch = bench.RenameWatch(workdir)
    first = checkpoint(workdir, w, watch)
    times, kept = [], []
    for _ in range(rounds):
        w.proc.send_signal(signal.SIGUSR1)
        line = w.proc.stdout.readline()
        if not line.startswith("changed"):
            bench.die(f"the program did not change its pages: {line!r}")
        times.append(checkpoint(workdir, w, watch))
        info = subprocess.run([bench.CKPT, "info", "--json", image], check=True,
                              capture_output=True, text=True)
        # 0 for a checkpoint written anew (the second of a chain, or CKPT_INCREMENTAL=0).
        kept.append(json.loads(info.stdout)["kept_from_previous"])
    watch.close()
    w.proc.send_signal(signal.SIGUSR2)
    if w.wait() != 0:
        bench.die(f"the program failed: {w.proc.stderr.read()}")
    return first, times, kept


def third_checkpoint(workdir, mib, incremental, fsync):
    """(third checkpoint, after 1% of the pages changed since the second, bytes kept)."""
    _, times, kept = chain(workdir, mib, incremental, fsync, 2)
    return times[1], kept[1]


def fs_type(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main():
    mib = int(sys.argv[1]) if sys.argv[1:] else 1024
    workdir = tempfile.mkdtemp(prefix="ckpt-bench-", dir=os.environ.get("CKPT_BENCH_DIR"))
    try:
        subprocess.run(["cc", "-O2", "-o", os.path.join(workdir, "incremental"),
                        os.path.join(bench.ROOT, "benches", "incremental.c")], check=True)
        print(f"ckpt incremental benchmark: {mib} MiB, 1% of its pages changed; median of "
              f"{bench.RUNS} runs after a warm-up; files in {workdir} ({fs_type(workdir)})")
        changed = mib * 256 // 100
        path = os.path.join(workdir, "dd.out")
        # Two intervals' changes: the spare is one checkpoint behind.
        dd2 = ["dd", "if=/dev/zero", f"of={path}", "bs=4k", f"count={2 * changed}"]

        def fresh(cmd):
            if os.path.exists(path):
                os.unlink(path)
            return bench.timed(cmd)

        for fsync in [True, False]:
            label = "durable (fsync)" if fsync else "CKPT_FSYNC=0"
            ref = bench.steady(lambda: fresh(dd2 + (["conv=fsync"] if fsync else [])))
            full, _ = bench.steady(lambda: third_checkpoint(workdir, mib, False, fsync))
            inc, kept = bench.steady(lambda: third_checkpoint(workdir, mib, True, fsync))
            print(f"\n== {label}")
            print(f"  dd of the changed pages ({2 * changed} x 4 KiB) {bench.fmt_t(ref)}")
            print(f"  checkpoint, full                       {bench.fmt_t(full)}")
            print(f"  checkpoint, incremental                {bench.fmt_t(inc)}"
                  f"   {inc / full * 100:5.1f}% of full   {inc / ref:5.1f} x dd"
                  f"   ({kept / 2**20:.0f} MiB kept in place)")
            _, times, kept = chain(workdir, mib, True, fsync, CHAIN)
            steady_times = times[1:]
            mean = sum(steady_times) / len(steady_times)
            print(f"  a chain of {CHAIN}, incremental (one run)  {bench.fmt_t(mean)}"
                  f"   {mean / full * 100:5.1f}% of full, mean from the third checkpoint on; "
                  + " ".join(f"{t * 1000:.0f}{'' if k else '(anew)'}"
                             for t, k in zip(times, kept)) + " ms")
        if os.path.exists(path):
            os.unlink(path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
