#!/usr/bin/env bash
# How cost grows: dispatch for 1, 4, 16 and 64 worker processes, and chat fan-out for 10, 50 and
# 200 subscribers, three runs each, printed as Markdown tables with a text chart of the medians.
#
#   bench/scaling/run.sh [RUNS]
#
# Each point is `tcluster bench dispatch --workers N --json` or `tcluster bench chat
# --subscribers N --json` (journal and history on disk, as under `tcluster run`); a table row
# gives the range of the runs. Method and results: docs/PERFORMANCE.md, "How cost grows".
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
TCLUSTER=${TCLUSTER:-target/release/tcluster}
[ -x "$TCLUSTER" ] || cargo build --release -q
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

for workers in 1 4 16 64; do
    for run in $(seq "$RUNS"); do
        "$TCLUSTER" bench dispatch --workers "$workers" --json >"$OUT/dispatch-$workers-$run.json"
    done
done
for subscribers in 10 50 200; do
    for run in $(seq "$RUNS"); do
        "$TCLUSTER" bench chat --subscribers "$subscribers" --posts 5000 --json >"$OUT/chat-$subscribers-$run.json"
    done
done

python3 - "$OUT" <<'PY'
import glob, json, os, statistics, sys

out = sys.argv[1]

def runs(kind, n):
    return [json.load(open(p))[kind] for p in sorted(glob.glob(f"{out}/{kind}-{n}-*.json"))]

def span(values, fmt):
    return f"{fmt(min(values))}–{fmt(max(values))}"

def bar(value, top, width=40):
    return "█" * max(1, round(width * value / top))

def table(kind, title, unit, ns, rate, latency, chart):
    """One sweep: a Markdown table of the runs' ranges, then a text chart of the medians."""
    print(f"{title}\n")
    print(f"| {unit} | {chart} | {latency} p50 (ms) | p99 (ms) |")
    print("| ---: | ---: | ---: | ---: |")
    medians = []
    for n in ns:
        r = runs(kind, n)
        rates = [x[rate] for x in r]
        p50 = [x[latency_key[kind]]["median"] for x in r]
        p99 = [x[latency_key[kind]]["p99"] for x in r]
        medians.append((n, statistics.median(rates)))
        print(f"| {n} | {span(rates, lambda v: f'{v:,.0f}')} | {span(p50, lambda v: f'{v:.2f}')} | {span(p99, lambda v: f'{v:.2f}')} |")
    top = max(v for _, v in medians)
    print(f"\n```text\n{chart} (median)")
    for n, v in medians:
        print(f"{n:>3} {unit}  {bar(v, top)} {v:,.0f}")
    print("```\n")

latency_key = {"dispatch": "round_trip", "chat": "latency"}
table("dispatch", "dispatch (20,000 no-op jobs, 8 slots per worker, journal on disk)",
      "workers", (1, 4, 16, 64), "jobs_per_second", "round trip", "jobs/s")
table("chat", "chat fan-out (5,000 posts to one channel, history on disk)",
      "subscribers", (10, 50, 200), "deliveries_per_second", "latency at half load", "deliveries/s")
PY
