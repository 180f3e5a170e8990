# Holds a dict of 200,000 entries and a list as long, prints "ready CHECKSUM", then "ok N"
# every 10 ms. When its process id changes (it was restarted), it verifies every entry and
# prints "restarted CHECKSUM" (or "BAD ..." first when an entry is wrong).
import os
import time

N = 200_000
table = {i: "v%d" % (i * 7) for i in range(N)}
squares = [i * i for i in range(N)]


def checksum():
    total = 0
    for key, value in table.items():
        total = (total * 31 + key * len(value)) % 1_000_000_007
    return (total + sum(squares)) % 1_000_000_007


def wrong():
    if len(table) != N or len(squares) != N:
        return "sizes are %d and %d" % (len(table), len(squares))
    for i in range(N):
        if table[i] != "v%d" % (i * 7):
            return "table[%d] is %r" % (i, table[i])
        if squares[i] != i * i:
            return "squares[%d] is %r" % (i, squares[i])
    return None


print("ready %d" % checksum(), flush=True)
pid = os.getpid()
n = 0
while True:
    n += 1
    if os.getpid() != pid:
        pid = os.getpid()
        problem = wrong()
        if problem:
            print("BAD after restart: " + problem, flush=True)
        print("restarted %d" % checksum(), flush=True)
    print("ok %d" % n, flush=True)
    time.sleep(0.01)
