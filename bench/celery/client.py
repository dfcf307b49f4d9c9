"""Measures Celery + Redis the way `tcluster bench dispatch` measures tcluster: N no-op tasks
submitted one by one and every result collected (jobs/s), then one task at a time on the idle
cluster (round trip p50/p99). Prints one JSON object."""

import json
import sys
import time

from tasks import noop


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    round_trips = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    # Warm up the connections and the workers.
    for r in [noop.delay(i) for i in range(50)]:
        r.get(timeout=60)
    started = time.perf_counter()
    results = [noop.delay(i) for i in range(jobs)]
    for r in results:
        r.get(timeout=300)
    seconds = time.perf_counter() - started
    samples = []
    for i in range(round_trips):
        t = time.perf_counter()
        noop.delay(i).get(timeout=60)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    pick = lambda q: samples[round((len(samples) - 1) * q)]
    print(json.dumps({
        "system": "celery+redis",
        "jobs": jobs,
        "seconds": seconds,
        "jobs_per_second": jobs / seconds,
        "round_trip_ms": {"median": pick(0.5), "p99": pick(0.99), "n": len(samples)},
    }))


if __name__ == "__main__":
    main()
