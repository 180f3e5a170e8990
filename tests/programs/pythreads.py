# Python threads through a checkpoint: counters under a threading.Lock, and a queue.Queue
# pipeline.
#
# Usage: pythreads.py COUNTERS INCREMENTS PRODUCERS CONSUMERS ITEMS
#
# COUNTERS threads each add 1 to a shared counter INCREMENTS times, holding a Lock for every
# read-modify-write (and to their own per-thread slot). PRODUCERS threads each put ITEMS
# numbers p * ITEMS + i (i in [0, ITEMS)) on a bounded queue.Queue; CONSUMERS threads take
# them until each gets a None, adding them up under another Lock. Prints "ready" once every
# thread runs, "progress K" after each tenth of the counting, and at the end
# "total counter N MIN MAX" (MIN and MAX of the per-thread counts) and
# "total queue COUNT SUM".
import queue
import sys
import threading

counters, increments, producers, consumers, items = map(int, sys.argv[1:6])

lock = threading.Lock()
counter = 0
slots = [0] * counters
start = threading.Event()
step = counters * increments // 10


def count(k):
    global counter
    start.wait()
    for _ in range(increments):
        with lock:
            value = counter
            slots[k] += 1
            counter = value + 1
            if counter % step == 0:
                print("progress", counter // step, flush=True)


work = queue.Queue(maxsize=100)
taken_lock = threading.Lock()
taken = [0, 0]


def produce(p):
    start.wait()
    for i in range(items):
        work.put(p * items + i)


def consume():
    while True:
        item = work.get()
        if item is None:
            return
        with taken_lock:
            taken[0] += 1
            taken[1] += item


counting = [threading.Thread(target=count, args=(k,)) for k in range(counters)]
producing = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
consuming = [threading.Thread(target=consume) for _ in range(consumers)]
for t in counting + producing + consuming:
    t.start()
print("ready", flush=True)
start.set()
for t in counting + producing:
    t.join()
for _ in consuming:
    work.put(None)
for t in consuming:
    t.join()
print("total counter", counter, min(slots), max(slots), flush=True)
print("total queue", taken[0], taken[1], flush=True)
