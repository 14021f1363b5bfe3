#!/usr/bin/env python3
"""Memory and CPU pressure for the soak test (t-soak-load.sh).

    hog.py cpu              one busy loop, until killed
    hog.py mem FLOOR_MIB    holds as much memory as leaves about FLOOR_MIB
                            of MemAvailable on this machine (never less than
                            half of it), rewriting its pages all the time so
                            they stay hot, until killed

The memory hog adjusts every half second (half the way to the floor a
round, in 64 MiB chunks): it presses on
the machine without ever running it out of memory (the cluster's node stores
and ranks come and go around it). Prints its size now and then on stderr.
"""
import sys
import time

STEP = 64 << 20
ONES = b"\x02" * (STEP // 4096)


def available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def cpu():
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF


def mem(floor_mib):
    chunks = []
    last = 0.0
    while True:
        avail = available_mib()
        if avail > floor_mib + 64:  # half the way to the floor each round
            for _ in range(max(1, (avail - floor_mib) // 128)):
                chunks.append(bytearray(b"\x01") * STEP)  # written: resident
        elif avail < floor_mib // 2 and chunks:
            chunks.pop()
        else:
            for c in chunks:  # keep every page hot: one byte per 4 KiB page
                c[::4096] = ONES[: len(range(0, len(c), 4096))]
        now = time.monotonic()
        if now - last > 10:
            print(f"hog: holding {len(chunks) * 64} MiB, {avail} MiB available", file=sys.stderr, flush=True)
            last = now
        time.sleep(0.5)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "cpu":
        cpu()
    elif len(sys.argv) == 3 and sys.argv[1] == "mem" and sys.argv[2].isdigit():
        mem(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
