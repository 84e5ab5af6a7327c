"""The disk's own fsync latency at a fixed rate (BENCHMARKS.md, "session 7").

Appends SIZE bytes and fdatasyncs (or fsyncs) N times at RATE per second to a file in target/,
and prints the latency percentiles. With BG_KIB, a second thread meanwhile writes BG_KIB of
4 KiB pages at random places of a 256 MiB file every BG_MS milliseconds, then fsyncs it (or
not, with `nofsync`): what an indexed store written behind a journal, or SQLite's checkpoints,
do to the appends' tail on the same disk.

    python3 benches/fsync_probe.py 300 20000 1000 fdatasync
    python3 benches/fsync_probe.py 400 15000 1000 fdatasync 2000 250 [nofsync]
"""
import os
import random
import sys
import threading
import time

TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target")
size, n, rate, mode = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
bg_kib = int(sys.argv[5]) if len(sys.argv) > 5 else 0
bg_every = float(sys.argv[6]) / 1000 if len(sys.argv) > 6 else 0.25
bg_fsync = not (len(sys.argv) > 7 and sys.argv[7] == "nofsync")
stop = threading.Event()


def background():
    path = os.path.join(TARGET, "fsync-probe-bg.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.ftruncate(fd, 256 << 20)
    page = b"y" * 4096
    while not stop.is_set():
        started = time.perf_counter()
        for _ in range(bg_kib // 4):
            os.pwrite(fd, page, random.randrange(0, (256 << 20) // 4096) * 4096)
        if bg_fsync:
            os.fsync(fd)
        stop.wait(max(0.0, bg_every - (time.perf_counter() - started)))
    os.close(fd)
    os.unlink(path)


writer = threading.Thread(target=background)
if bg_kib:
    writer.start()
path = os.path.join(TARGET, "fsync-probe.bin")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = b"x" * size
sync = os.fdatasync if mode == "fdatasync" else os.fsync
lat = []
t0 = time.perf_counter()
for i in range(n):
    wait = t0 + i / rate - time.perf_counter()
    if wait > 0:
        time.sleep(wait)
    s = time.perf_counter()
    os.write(fd, buf)
    sync(fd)
    lat.append(time.perf_counter() - s)
stop.set()
if bg_kib:
    writer.join()
os.close(fd)
os.unlink(path)
lat.sort()


def q(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000


bg = f", beside {bg_kib} KiB random every {bg_every * 1000:.0f} ms ({'fsynced' if bg_fsync else 'no fsync'})" if bg_kib else ""
print(f"{size} B appends at {rate:.0f}/s + {mode}{bg}: p50 {q(.5):.3f} ms, p99 {q(.99):.3f} ms, "
      f"p99.9 {q(.999):.3f} ms, max {lat[-1] * 1000:.1f} ms, over 1 ms: {sum(x > 0.001 for x in lat)} of {n}")
