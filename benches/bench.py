#!/usr/bin/env python3
"""ckpt's benchmark: checkpoint and restart times against the physical floor.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/bench.py            # 16 MiB, 256 MiB, 1 GiB and the sparse case
    python3 benches/bench.py 16 256     # only these sizes (MiB)

For each size of touched memory it measures, each the median of five runs after a warm-up:
  - checkpoint time, durable (fsync, the default) and not (CKPT_FSYNC=0): from the
    checkpoint signal until the complete file is renamed into place (seen with inotify),
    and, in brackets, until the process that wrote it has exited (freeing its memory);
  - the pause of a program with CKPT_CONTINUE (a copy-on-write child writes the image): the
    longest gap the program itself sees between two iterations of its loop;
  - the checkpoint file's size;
  - eager and lazy (CKPT_LAZY=1) restart time: from starting the checkpoint file to the
    first thing the resumed program does (its restart hook reads the clock);
and, with CKPT_COMPRESS=0 (program and library images stored raw, not compressed as by
default) and CKPT_COMPRESS=lz4 (all memory compressed), the durable checkpoint time, size and
eager restart; for the memory in transparent huge pages (MADV_HUGEPAGE), the eager restart;
it prints
each as a ratio against `dd` writing the same bytes (with and without fsync)
and reading them back from the page cache (`cat`'s job; timed with dd to /dev/null). The sparse case is a 32 GiB reservation
with 10 MiB touched.
"""

import ctypes
import os
import select
import shutil
import struct
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT = os.path.join(ROOT, "target", "release", "ckpt")
RUNS = 5
TIMEOUT = 120


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


def median(values):
    return statistics.median(values)


def steady(measure_once):
    """Median of RUNS runs after one discarded warm-up run: the first write after freeing
    a large file pays for the kernel's reclaim and is several times slower here. Works on
    numbers and on tuples of numbers (medians taken field by field)."""
    measure_once()
    runs = [measure_once() for _ in range(RUNS)]
    if isinstance(runs[0], tuple):
        return tuple(median(field) for field in zip(*runs))
    return median(runs)


def env_with(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CKPT_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def timed(cmd, **kw):
    # Start every measurement with no dirty data of an earlier one still being written back.
    os.sync()
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT, **kw)
    return time.perf_counter() - t0


class Program:
    """A benchmark program (built in workdir) running under ckpt, read line by line once it
    says "ready"."""

    def __init__(self, workdir, name, args, env):
        self.name = name
        self.proc = subprocess.Popen(
            [CKPT, os.path.join(workdir, name)] + args,
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            die(f"{name} did not start: {line!r} {self.proc.stderr.read()}")

    def wait(self):
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            die(f"{self.name} did not finish")


LIBC = ctypes.CDLL(None, use_errno=True)
IN_MOVED_TO = 0x80


class RenameWatch:
    """inotify on a directory: the moment a file is renamed into place there."""

    def __init__(self, directory):
        self.fd = LIBC.inotify_init1(os.O_CLOEXEC)
        if self.fd < 0 or LIBC.inotify_add_watch(self.fd, directory.encode(), IN_MOVED_TO) < 0:
            die("inotify is not available")

    def wait_for(self, name):
        deadline = time.time() + TIMEOUT
        while time.time() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 1.0)
            if not ready:
                continue
            t = time.perf_counter()
            buf = os.read(self.fd, 65536)
            at = 0
            while at < len(buf):
                _, _, _, length = struct.unpack_from("iIII", buf, at)
                event_name = buf[at + 16:at + 16 + length].rstrip(b"\0").decode()
                at += 16 + length
                if event_name == name:
                    return t
        die(f"{name} was never renamed into place")

    def close(self):
        os.close(self.fd)


def checkpoint_time(workdir, mib, extra_args, **env):
    """(time until the checkpoint file is complete, time until the process has exited)."""
    image = os.path.join(workdir, "workload.ckpt")
    if os.path.exists(image):
        os.unlink(image)
    w = Program(workdir, "workload", [str(mib)] + extra_args, env_with(**env))
    watch = RenameWatch(workdir)
    os.sync()
    t0 = time.perf_counter()
    w.proc.send_signal(signal.SIGTSTP)
    complete = watch.wait_for("workload.ckpt") - t0
    status = w.wait()
    exited = time.perf_counter() - t0
    watch.close()
    if status != 0 or not os.path.exists(image):
        die(f"checkpoint failed (status {status}): {w.proc.stderr.read()}")
    return complete, exited


def pause_time(workdir, mib, extra_args):
    image = os.path.join(workdir, "workload.ckpt")
    if os.path.exists(image):
        os.unlink(image)
    w = Program(workdir, "workload", [str(mib)] + extra_args, env_with(CKPT_CONTINUE=1, CKPT_FSYNC=0))
    w.proc.send_signal(signal.SIGTSTP)
    deadline = time.time() + TIMEOUT
    while not os.path.exists(image):
        if time.time() > deadline:
            w.proc.kill()
            die("no checkpoint with CKPT_CONTINUE")
        time.sleep(0.01)
    w.proc.send_signal(signal.SIGUSR1)
    out = w.proc.stdout.read()
    w.wait()
    for line in out.splitlines():
        if line.startswith("pause "):
            return int(line.split()[1]) / 1e9
    die(f"no pause reported: {out!r}")


def restart_time(workdir, lazy, image="workload.ckpt", prefix=(), **env):
    """From starting the checkpoint file `image` (in workdir; behind the command `prefix`,
    with CKPT_LAZY=1 when `lazy` and `env` added) until its restart hook reads the clock."""
    if lazy:
        env["CKPT_LAZY"] = 1
    t0 = time.time_ns()
    p = subprocess.Popen(list(prefix) + [os.path.join(workdir, image)], cwd=workdir,
                         env=env_with(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline().split()
    p.kill()
    p.wait()
    if len(line) != 2 or line[0] != "restarted":
        die(f"restart failed: {line!r} {p.stderr.read()}")
    return (int(line[1]) - t0) / 1e9


def floor(workdir, mib):
    """dd writing `mib` MiB into a new file, without and with fsync, and reading it back
    from the page cache (dd to /dev/null: `cat` there may not read at all)."""
    path = os.path.join(workdir, "dd.out")
    dd = ["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}"]

    def fresh(cmd):
        if os.path.exists(path):
            os.unlink(path)
        return timed(cmd)

    nosync = steady(lambda: fresh(dd))
    synced = steady(lambda: fresh(dd + ["conv=fsync"]))
    cat = steady(lambda: timed(["dd", f"if={path}", "of=/dev/null", "bs=1M"]))
    os.unlink(path)
    return nosync, synced, cat


def fmt_t(t):
    return f"{t * 1000:9.1f} ms"


def measure(workdir, mib, sparse):
    extra = ["sparse"] if sparse else []
    label = f"{mib} MiB touched in a 32 GiB reservation" if sparse else f"{mib} MiB"
    dd_nosync, dd_sync, cat = floor(workdir, mib)
    durable, durable_exit = steady(lambda: checkpoint_time(workdir, mib, extra))
    fast, fast_exit = steady(lambda: checkpoint_time(workdir, mib, extra, CKPT_FSYNC=0))
    size = os.path.getsize(os.path.join(workdir, "workload.ckpt"))
    eager = steady(lambda: restart_time(workdir, False))
    lazy = steady(lambda: restart_time(workdir, True))
    variants = []
    for setting in ["0", "lz4"]:
        t, _ = steady(lambda: checkpoint_time(workdir, mib, extra, CKPT_COMPRESS=setting))
        variant_size = os.path.getsize(os.path.join(workdir, "workload.ckpt"))
        variants.append((setting, t, variant_size, steady(lambda: restart_time(workdir, False))))
    huge_restart = None
    if not sparse:
        steady(lambda: checkpoint_time(workdir, mib, ["huge"]))
        huge_restart = steady(lambda: restart_time(workdir, False))
    pause = steady(lambda: pause_time(workdir, mib, extra))
    print(f"\n== {label}")
    print(f"  dd (no fsync)            {fmt_t(dd_nosync)}")
    print(f"  dd conv=fsync            {fmt_t(dd_sync)}")
    print(f"  read from page cache     {fmt_t(cat)}")
    print(f"  checkpoint, durable      {fmt_t(durable)}   {durable / dd_sync:5.2f} x dd+fsync"
          f"   (process gone after {fmt_t(durable_exit).strip()})")
    print(f"  checkpoint, CKPT_FSYNC=0 {fmt_t(fast)}   {fast / dd_nosync:5.2f} x dd"
          f"   (process gone after {fmt_t(fast_exit).strip()})")
    print(f"  pause with CKPT_CONTINUE {fmt_t(pause)}")
    print(f"  file size                {size / 2**20:9.1f} MiB  ({size / (mib * 2**20):.2f} x touched)")
    print(f"  restart, eager           {fmt_t(eager)}   {eager / cat:5.2f} x read")
    print(f"  restart, lazy            {fmt_t(lazy)}   {lazy / cat:5.2f} x read")
    if huge_restart is not None:
        print(f"  restart, eager, THP      {fmt_t(huge_restart)}   {huge_restart / cat:5.2f} x read"
              f"   (memory in transparent huge pages)")
    for setting, t, variant_size, restart in variants:
        print(f"  CKPT_COMPRESS={setting:<10} {fmt_t(t)} durable checkpoint, "
              f"{variant_size / 2**20:.1f} MiB, restart {fmt_t(restart).strip()}")


def main():
    if not os.path.exists(CKPT):
        die("build first: cargo build --release --workspace")
    sizes = [int(a) for a in sys.argv[1:]] or [16, 256, 1024]
    workdir = tempfile.mkdtemp(prefix="ckpt-bench-", dir=os.environ.get("CKPT_BENCH_DIR"))
    try:
        subprocess.run(["cc", "-O2", "-o", os.path.join(workdir, "workload"),
                        os.path.join(ROOT, "benches", "workload.c")], check=True)
        print(f"ckpt benchmark: median of {RUNS} runs after a warm-up; files in {workdir}")
        for mib in sizes:
            measure(workdir, mib, sparse=False)
        if not sys.argv[1:]:
            measure(workdir, 10, sparse=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
