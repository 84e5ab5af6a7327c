"""The disk's own fsync latency at a fixed rate (BENCHMARKS.md, "session 7"): appends SIZE bytes
and fdatasyncs (or fsyncs) N times at RATE per second to a file in target/, and prints p50/p99.

    python3 benches/fsync_probe.py 300 20000 1000 fdatasync
"""
import os, time, sys
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "fsync-probe.bin")
size = int(sys.argv[1]); n = int(sys.argv[2]); rate = float(sys.argv[3]); mode = sys.argv[4]
fd = os.open(PATH, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
buf = b"x" * size
lat = []
t0 = time.perf_counter()
for i in range(n):
    target = t0 + i / rate
    now = time.perf_counter()
    if target > now: time.sleep(target - now)
    s = time.perf_counter()
    os.write(fd, buf)
    if mode == "fdatasync": os.fdatasync(fd)
    else: os.fsync(fd)
    lat.append(time.perf_counter() - s)
os.close(fd); os.unlink(PATH)
lat.sort()
q = lambda p: lat[min(len(lat)-1, int(p * len(lat)))] * 1000
print(f"size {size} rate {rate}/s {mode}: p50 {q(.5):.3f} ms p99 {q(.99):.3f} ms p99.9 {q(.999):.3f} ms max {lat[-1]*1000:.1f} ms  >1ms {sum(l > 0.001 for l in lat)}")
