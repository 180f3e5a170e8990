#!/usr/bin/env python3
"""ckpt's attach benchmark: what `ckpt attach` costs a running program.

Run from the repository root after `cargo build --release --workspace`:

    python3 benches/attach.py

benches/attach.c, started without ckpt, sleeps 1 ms at a time and records the longest delay
past a sleep. Each figure is the median of five runs after a warm-up (bench.py's
conventions), for:
  - nothing done to it (the scheduler's own jitter, the floor);
  - `kill -STOP` then `kill -CONT` at once: the kernel stopping and continuing it, the
    physical reference for anything that stops a process from outside;
  - `ckpt attach PID`: ptrace stop at a safe point, remote setenv/dlopen/unsetenv calls,
    registers put back; the program's longest delay, and the command's wall time;
and the attach's delay as a ratio against the stop/continue one.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CKPT, ROOT, TIMEOUT, die, fmt_t, steady  # noqa: E402


class Target:
    """benches/attach.c running on its own (not under ckpt)."""

    def __init__(self, workdir):
        self.proc = subprocess.Popen(
            [os.path.join(workdir, "attach")], cwd=workdir,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.kill()
            die(f"the target did not start: {self.proc.stderr.read()}")
        time.sleep(0.2)

    def pause(self):
        """Stops the target; its longest delay in seconds."""
        time.sleep(0.2)
        self.proc.send_signal(signal.SIGUSR1)
        try:
            out, _ = self.proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            die("the target did not stop")
        for line in out.splitlines():
            if line.startswith("pause "):
                return int(line.split()[1]) / 1e9
        die(f"no pause reported: {out!r}")


def nothing(workdir):
    return Target(workdir).pause()


def stop_continue(workdir):
    t = Target(workdir)
    os.kill(t.proc.pid, signal.SIGSTOP)
    os.kill(t.proc.pid, signal.SIGCONT)
    return t.pause()


def attach(workdir):
    t = Target(workdir)
    start = time.monotonic()
    r = subprocess.run([CKPT, "attach", str(t.proc.pid)], cwd=workdir,
                       capture_output=True, text=True, timeout=TIMEOUT, close_fds=True)
    wall = time.monotonic() - start
    if r.returncode != 0:
        t.proc.kill()
        die(f"ckpt attach failed ({r.returncode}): {r.stderr.strip()}")
    return t.pause(), wall


def main():
    if not os.path.exists(CKPT):
        die(f"{CKPT} not found: run `cargo build --release --workspace` first")
    workdir = tempfile.mkdtemp(prefix="ckpt-bench-attach-")
    try:
        subprocess.run(["cc", "-O2", "-I", os.path.join(ROOT, "benches"), "-o",
                        os.path.join(workdir, "attach"),
                        os.path.join(ROOT, "benches", "attach.c")], check=True)
        base = steady(lambda: nothing(workdir))
        stop = steady(lambda: stop_continue(workdir))
        pause, wall = steady(lambda: attach(workdir))
        print("ckpt attach benchmark: median of 5 runs after a warm-up")
        print(f"  longest delay, nothing done            {fmt_t(base)}")
        print(f"  longest delay, kill -STOP; kill -CONT  {fmt_t(stop)}")
        print(f"  longest delay, ckpt attach             {fmt_t(pause)}"
              f"   {pause / stop:5.2f} x stop/continue   (ckpt attach itself took {fmt_t(wall)})")
        print(f"  (the scheduler's own jitter is in every figure: attach costs about "
              f"{fmt_t(max(pause - base, 0))} more than nothing, stop/continue "
              f"{fmt_t(max(stop - base, 0))})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
