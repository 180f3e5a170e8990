# Python threads through a checkpoint: counters under a threading.Lock, feeding a bounded
# queue.Queue that consumer threads drain.
#
# Usage: pythreads.py COUNTERS INCREMENTS CONSUMERS EVERY
#
# COUNTERS threads each add 1 to a shared counter INCREMENTS times, holding a Lock for every
# read-modify-write (and counting their own increments in a slot of their own). The thread
# that brings the counter to a multiple of EVERY puts that value on a bounded queue.Queue
# (after letting go of the lock), so the queue is busy for as long as the counting goes on;
# CONSUMERS threads take values until each gets a None, adding them up under another Lock.
# Prints "ready" once every thread runs, "progress K" after each tenth of the counting, and
# at the end "total counter N MIN MAX" (MIN and MAX of the per-thread counts) and
# "total queue COUNT SUM".
import queue
import sys
import threading

counters, increments, consumers, every = map(int, sys.argv[1:5])

lock = threading.Lock()
counter = 0
slots = [0] * counters
start = threading.Event()
step = counters * increments // 10
work = queue.Queue(maxsize=100)
taken_lock = threading.Lock()
taken = [0, 0]


def count(k):
    global counter
    start.wait()
    for _ in range(increments):
        with lock:
            value = counter + 1
            slots[k] += 1
            counter = value
            if value % step == 0:
                print("progress", value // step, flush=True)
        if value % every == 0:
            work.put(value)


def consume():
    while True:
        item = work.get()
        if item is None:
            return
        with taken_lock:
            taken[0] += 1
            taken[1] += item


counting = [threading.Thread(target=count, args=(k,)) for k in range(counters)]
consuming = [threading.Thread(target=consume) for _ in range(consumers)]
for t in counting + consuming:
    t.start()
print("ready", flush=True)
start.set()
for t in counting:
    t.join()
for _ in consuming:
    work.put(None)
for t in consuming:
    t.join()
print("total counter", counter, min(slots), max(slots), flush=True)
print("total queue", taken[0], taken[1], flush=True)
