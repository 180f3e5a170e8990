#!/usr/bin/env python3
"""Incremental checkpoints: a full checkpoint against one that writes only the changed pages.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/incremental.py          # 1 GiB, 1% of its pages changed
    python3 benches/incremental.py 256      # this size (MiB)

A program with the given memory (every page written) runs under ckpt with CKPT_CONTINUE=1
(a forked writer). It is checkpointed once (full: nothing is known yet), then writes one
word in 1% of its pages, chosen at random, and is checkpointed again, timed from the
checkpoint signal until the file is renamed into place (inotify). The second checkpoint is
measured with CKPT_INCREMENTAL=0 (full) and =1 (incremental: the changed pages from
memory, the rest copied from the first file with copy_file_range), durable (fsync, the
default) and with CKPT_FSYNC=0; each the median of five runs after a warm-up. The ratio
incremental / full is the goal's measure (<= 10%); dd writing the changed pages' worth of
bytes is the physical reference. Then, once, a chain of 8 such checkpoints: writing
scattered pages over shared blocks leaves each file in more pieces than the last, and
once there are too many the next checkpoint is full (marked so). Set CKPT_BENCH_DIR to run on another file system: with
reflinks (XFS, Btrfs) the copy shares blocks; elsewhere (ext4, tmpfs) the kernel copies
the bytes, which costs about as much as writing them.
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
    [bytes each shared with the previous file])."""
    image = os.path.join(workdir, NAME)
    if os.path.exists(image):
        os.unlink(image)
    env = bench.env_with(CKPT_CONTINUE=1, CKPT_INCREMENTAL=int(incremental),
                         CKPT_FSYNC=int(fsync), CKPT_NAME=image)
    w = bench.Program(workdir, "incremental", [str(mib)], env)
    watch = bench.RenameWatch(workdir)
    first = checkpoint(workdir, w, watch)
    times, copied = [], []
    for _ in range(rounds):
        w.proc.send_signal(signal.SIGUSR1)
        line = w.proc.stdout.readline()
        if not line.startswith("changed"):
            bench.die(f"the program did not change its pages: {line!r}")
        times.append(checkpoint(workdir, w, watch))
        info = subprocess.run([bench.CKPT, "info", "--json", image], check=True,
                              capture_output=True, text=True)
        # 0 where the file system cannot share blocks (all written from memory), and for
        # a full checkpoint after a chain that left the previous file in too many pieces.
        copied.append(json.loads(info.stdout)["copied_from_previous"])
    watch.close()
    w.proc.send_signal(signal.SIGUSR2)
    if w.wait() != 0:
        bench.die(f"the program failed: {w.proc.stderr.read()}")
    return first, times, copied


def second_checkpoint(workdir, mib, incremental, fsync):
    """(first checkpoint, second checkpoint after 1% of the pages changed, bytes shared)."""
    first, times, copied = chain(workdir, mib, incremental, fsync, 1)
    return first, times[0], copied[0]


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
        dd = ["dd", "if=/dev/zero", f"of={path}", "bs=4k", f"count={changed}"]

        def fresh(cmd):
            if os.path.exists(path):
                os.unlink(path)
            return bench.timed(cmd)

        for fsync in [True, False]:
            label = "durable (fsync)" if fsync else "CKPT_FSYNC=0"
            ref = bench.steady(lambda: fresh(dd + (["conv=fsync"] if fsync else [])))
            first, full, _ = bench.steady(lambda: second_checkpoint(workdir, mib, False, fsync))
            first_inc, inc, copied = bench.steady(
                lambda: second_checkpoint(workdir, mib, True, fsync))
            print(f"\n== {label}")
            print(f"  dd of the changed pages ({changed} x 4 KiB) {bench.fmt_t(ref)}")
            print(f"  first checkpoint, CKPT_INCREMENTAL=0   {bench.fmt_t(first)}")
            print(f"  first checkpoint, CKPT_INCREMENTAL=1   {bench.fmt_t(first_inc)}"
                  f"   (starts tracking)")
            print(f"  second checkpoint, full                {bench.fmt_t(full)}")
            print(f"  second checkpoint, incremental         {bench.fmt_t(inc)}"
                  f"   {inc / full * 100:5.1f}% of full   {inc / ref:5.1f} x dd"
                  f"   ({copied / 2**20:.0f} MiB shared with the first file)")
            _, times, shared = chain(workdir, mib, True, fsync, CHAIN)
            mean = sum(times) / len(times)
            print(f"  a chain of {CHAIN}, incremental (one run)  {bench.fmt_t(mean)}"
                  f"   {mean / full * 100:5.1f}% of full, mean; "
                  + " ".join(f"{t * 1000:.0f}{'' if c else '(full)'}"
                             for t, c in zip(times, shared)) + " ms")
        if os.path.exists(path):
            os.unlink(path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
