"""Reads the rows bench/celery/run.sh printed (one JSON object per line, each round a Celery row
and then tcluster's) and prints each round's ratios against Celery in the same round, then the
ranges over the rounds."""

import json
import sys

ORDER = ["no journal", "sync", "group 1ms", "periodic 10ms", "none"]


def main():
    rounds = []
    for line in sys.stdin:
        row = json.loads(line)
        if "dispatch" not in row:
            rounds.append({"celery": (row["jobs_per_second"], row["round_trip_ms"]["median"])})
            continue
        d = row["dispatch"]
        mode = d["durability"] if d["journal"] else "no journal"
        rounds[-1][mode] = (d["jobs_per_second"], d["round_trip"]["median"])
    print("%-6s %-15s %9s %8s %10s" % ("round", "", "jobs/s", "×", "p50 (ms)"))
    for n, r in enumerate(rounds, 1):
        celery = r["celery"][0]
        print("%-6d %-15s %9.0f %7s %10.3f" % (n, "celery + redis", celery, "1×", r["celery"][1]))
        for mode in ORDER:
            if mode in r:
                jobs, p50 = r[mode]
                print("%-6s %-15s %9.0f %7.0f× %10.3f" % ("", mode, jobs, jobs / celery, p50))
    print("over %d round%s:" % (len(rounds), "" if len(rounds) == 1 else "s"))
    for mode in ORDER:
        ratios = [r[mode][0] / r["celery"][0] for r in rounds if mode in r]
        p50s = [r[mode][1] for r in rounds if mode in r]
        if ratios:
            print("  %-15s %4.0f–%.0f× Celery, round trip p50 %.3f–%.3f ms"
                  % (mode, min(ratios), max(ratios), min(p50s), max(p50s)))


if __name__ == "__main__":
    main()
