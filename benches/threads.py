#!/usr/bin/env python3
"""ckpt's thread benchmark: what many threads cost a checkpoint and a restart.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/threads.py              # 64 vs 1 thread over 256 MiB; restarts of 1, 16, 256
    python3 benches/threads.py 64 256       # THREADS MIB for the comparison (restarts as above)

With the conventions of bench.py (each figure the median of five runs after a warm-up) and
its workload's measures, for benches/threads.c (THREADS threads spinning on the clock, that
together touched MIB of memory):
  - the durable checkpoint time (fsync; from the checkpoint signal until the file is renamed
    into place, seen with inotify) with 1 busy thread and with THREADS busy threads touching
    the same total, and their ratio (the target: at most 1.2);
  - the pause with CKPT_CONTINUE=1 (a forked copy-on-write child writes the image): the
    longest time during which no thread of the program made progress, and the longest gap
    any single thread saw; and that gap in a run without a checkpoint, since with more
    spinning threads than CPUs a thread also waits its turn to run;
  - the eager and lazy (CKPT_LAZY=1) restart time with 1, 16 and 256 threads over 16 MiB:
    from starting the checkpoint file until the restart hook, which runs once every thread
    has been made again, reads the clock.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CKPT, ROOT, TIMEOUT, RUNS, Program, RenameWatch, restart_time, die, env_with, fmt_t, steady  # noqa: E402

RESTART_THREADS = [1, 16, 256]
RESTART_MIB = 16


class Threads(Program):
    """A running benches/threads.c under ckpt, read line by line."""

    def __init__(self, workdir, threads, mib, env):
        super().__init__(workdir, "threads", [str(threads), str(mib)], env)

    def pause(self):
        """Ends the program; (longest stall of the whole program, longest gap of a thread)."""
        self.proc.send_signal(signal.SIGUSR1)
        out, _ = self.proc.communicate(timeout=TIMEOUT)
        for line in out.splitlines():
            if line.startswith("pause "):
                stall, gap = line.split()[1:3]
                return int(stall) / 1e9, int(gap) / 1e9
        die(f"no pause reported: {out!r}")


def image_path(workdir):
    return os.path.join(workdir, "threads.ckpt")


def remove_image(workdir):
    if os.path.exists(image_path(workdir)):
        os.unlink(image_path(workdir))


def checkpoint_time(workdir, threads, mib):
    """From the checkpoint signal until the durable file is renamed into place."""
    remove_image(workdir)
    w = Threads(workdir, threads, mib, env_with())
    watch = RenameWatch(workdir)
    os.sync()
    t0 = time.perf_counter()
    w.proc.send_signal(signal.SIGTSTP)
    complete = watch.wait_for("threads.ckpt") - t0
    status = w.wait()
    watch.close()
    if status != 0:
        die(f"checkpoint failed (status {status}): {w.proc.stderr.read()}")
    return complete


def pause_time(workdir, threads, mib, checkpoint=True):
    """(stall, worst thread gap) of a run with a CKPT_CONTINUE checkpoint, or of a run as
    long without one."""
    remove_image(workdir)
    w = Threads(workdir, threads, mib, env_with(CKPT_CONTINUE=1, CKPT_FSYNC=0))
    if checkpoint:
        w.proc.send_signal(signal.SIGTSTP)
        deadline = time.time() + TIMEOUT
        while not os.path.exists(image_path(workdir)):
            if time.time() > deadline:
                w.proc.kill()
                w.proc.wait()
                die("no checkpoint with CKPT_CONTINUE")
            time.sleep(0.01)
    else:
        time.sleep(0.3)
    # Let the threads run on a little after the writer's copy, as the program would.
    time.sleep(0.1)
    return w.pause()


def compare(workdir, threads, mib):
    one = steady(lambda: checkpoint_time(workdir, 1, mib))
    many = steady(lambda: checkpoint_time(workdir, threads, mib))
    one_pause = steady(lambda: pause_time(workdir, 1, mib))
    many_pause = steady(lambda: pause_time(workdir, threads, mib))
    many_idle = steady(lambda: pause_time(workdir, threads, mib, checkpoint=False))
    print(f"\n== {mib} MiB touched: 1 busy thread against {threads} ({os.cpu_count()} CPUs)")
    print(f"  checkpoint, durable, 1 thread      {fmt_t(one)}")
    print(f"  checkpoint, durable, {threads:<3} threads  {fmt_t(many)}   {many / one:5.2f} x 1 thread"
          f"   (target <= 1.2)")
    print(f"  pause (CKPT_CONTINUE), 1 thread    {fmt_t(one_pause[0])}   "
          f"(longest gap of the thread {fmt_t(one_pause[1]).strip()})")
    print(f"  pause (CKPT_CONTINUE), {threads:<3} threads{fmt_t(many_pause[0])}   "
          f"{many_pause[0] / one_pause[0]:5.2f} x 1 thread   "
          f"(longest gap of a thread {fmt_t(many_pause[1]).strip()}; "
          f"{fmt_t(many_idle[1]).strip()} without a checkpoint)")


def restarts(workdir):
    print(f"\n== restart, {RESTART_MIB} MiB touched in all")
    base = None
    for n in RESTART_THREADS:
        steady(lambda: checkpoint_time(workdir, n, RESTART_MIB))
        eager = steady(lambda: restart_time(workdir, False, "threads.ckpt"))
        lazy = steady(lambda: restart_time(workdir, True, "threads.ckpt"))
        base = base or (eager, lazy)
        print(f"  {n:>3} threads   eager {fmt_t(eager)} ({eager / base[0]:5.2f} x 1 thread)"
              f"   lazy {fmt_t(lazy)} ({lazy / base[1]:5.2f} x 1 thread)")


def main():
    if not os.path.exists(CKPT):
        die("build first: cargo build --release --workspace")
    threads, mib = (int(a) for a in sys.argv[1:3]) if len(sys.argv) >= 3 else (64, 256)
    workdir = tempfile.mkdtemp(prefix="ckpt-bench-threads-", dir=os.environ.get("CKPT_BENCH_DIR"))
    try:
        subprocess.run(["cc", "-O2", "-pthread", "-o", os.path.join(workdir, "threads"),
                        os.path.join(ROOT, "benches", "threads.c")], check=True)
        print(f"ckpt thread benchmark: median of {RUNS} runs after a warm-up; files in {workdir}")
        compare(workdir, threads, mib)
        restarts(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
