#!/usr/bin/env python3
"""fake_ceiling.py: what the fake Wahoo itself allows at a provider delay.

Starts bench/fake_wahoo.js on 127.0.0.1 with DELAY_MS, then C threads, each
on its own keep-alive connection, send N/C plan lookups (GET /v1/plans, which
the fake answers after DELAY_MS like a create) one after another; no
database, no wsyncd.  Prints the rate, its share of the ideal C / delay, and
the answer times.  side_by_side.sh's "share of the ideal" for wsync and the
peers is bounded by this figure: the fake's timers fire late (node's loop),
whoever the client is.  A benchmark, not a test.

Usage: bench/fake_ceiling.py [--delay-ms 50] [--concurrency 32] [--n 3200]
                             [--port 18997] [--rounds 2]
Exit: 0 measured, 1 the fake did not start or a request failed, 2 usage.
"""
import argparse
import http.client
import os
import subprocess
import sys
import threading
import time


def run_round(port, concurrency, n):
    lat, errors, lock = [], [], threading.Lock()

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        try:
            for i in range(n // concurrency):
                t = time.perf_counter()
                conn.request("GET", "/v1/plans?external_id=ceiling-%d-%d" % (k, i),
                             headers={"Authorization": "Bearer ceiling"})
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError("HTTP %d" % r.status)
                mine.append(time.perf_counter() - t)
        except Exception as exc:  # reported below, the round fails
            with lock:
                errors.append(str(exc))
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, time.perf_counter() - t0, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay-ms", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--n", type=int, default=3200)
    ap.add_argument("--port", type=int, default=18997)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    if a.delay_ms <= 0 or a.concurrency <= 0 or a.n < a.concurrency or a.rounds <= 0:
        ap.error("--delay-ms and --concurrency must be > 0, --n >= --concurrency")
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, DELAY_MS=str(a.delay_ms), PORT=str(a.port))
    fake = subprocess.Popen(["node", os.path.join(here, "fake_wahoo.js")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if b"listening" not in fake.stdout.readline():
            print("fake_ceiling: fake_wahoo.js did not start on port %d" % a.port,
                  file=sys.stderr)
            return 1
        ideal = a.concurrency * 1000.0 / a.delay_ms
        for rnd in range(1, a.rounds + 1):
            lat, secs, errors = run_round(a.port, a.concurrency, a.n)
            if errors:
                print("fake_ceiling: round %d: %d requests failed: %s"
                      % (rnd, len(errors), errors[0]), file=sys.stderr)
                return 1
            lat.sort()
            rate = len(lat) / secs
            print("round %d: delay %d ms, %d in flight, %d answers: %.0f/s = %.1f %% of %.0f/s;"
                  " answer mean %.2f ms, p10 %.2f, p50 %.2f, p90 %.2f"
                  % (rnd, a.delay_ms, a.concurrency, len(lat), rate, 100 * rate / ideal, ideal,
                     1000 * sum(lat) / len(lat), 1000 * lat[len(lat) // 10],
                     1000 * lat[len(lat) // 2], 1000 * lat[len(lat) * 9 // 10]))
        return 0
    finally:
        fake.terminate()
        fake.wait()


if __name__ == "__main__":
    sys.exit(main())
