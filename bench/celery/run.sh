#!/usr/bin/env bash
# Celery with a Redis broker, measured beside tcluster on the same machine in one go.
#
#   bench/celery/run.sh [JOBS] [ROUND_TRIPS] [TCLUSTER_JOBS] [ROUNDS]
#
# Installs what it needs (Debian's redis-server, Celery from PyPI into bench/celery/.venv).
# Each round starts Redis on 127.0.0.1:6390 (in memory: no RDB, no AOF) and a Celery worker
# with 4 worker processes, runs client.py, stops them, then runs `tcluster bench dispatch`
# (without the journal, then with it in each durability mode). tcluster gets the same round
# trips and ten times the jobs (50,000): at its rate 5,000 jobs last a tenth of a second, too
# short to measure, and they never reach a journal compaction. Every row is printed as JSON as
# it comes; after the last round, a summary: each round's ratios against Celery in the same
# round, and their ranges (summary.py). Method and results: docs/performance/dispatch.md.
set -euo pipefail
cd "$(dirname "$0")"
. ../common.sh
JOBS=${1:-5000}
whole JOBS "$JOBS"
ROUND_TRIPS=${2:-300}
whole ROUND_TRIPS "$ROUND_TRIPS"
TCLUSTER_JOBS=${3:-$((JOBS * 10))}
whole TCLUSTER_JOBS "$TCLUSTER_JOBS"
ROUNDS=${4:-1}
whole ROUNDS "$ROUNDS"
PORT=6390

if ! command -v redis-server >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
fi
if [ ! -x .venv/bin/celery ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -r requirements.txt
fi
port_free "$PORT"
TCLUSTER=${TCLUSTER:-target/release/tcluster}
[ -x "../../$TCLUSTER" ] || [ -x "$TCLUSTER" ] || (cd ../.. && cargo build --release -q)
[ -x "$TCLUSTER" ] || TCLUSTER="../../$TCLUSTER"

cleanup() {
    [ -n "${WORKER:-}" ] && kill "$WORKER" 2>/dev/null && wait "$WORKER" 2>/dev/null || true
    [ -n "${REDIS:-}" ] && kill "$REDIS" 2>/dev/null && wait "$REDIS" 2>/dev/null || true
}
ROWS=$(mktemp)
trap 'cleanup; rm -f "$ROWS"' EXIT

for round in $(seq "$ROUNDS"); do
    redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --loglevel warning >/dev/null &
    REDIS=$!
    for _ in $(seq 100); do
        redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
        sleep 0.05
    done
    export BENCH_REDIS="redis://127.0.0.1:$PORT/0"
    .venv/bin/celery -A tasks worker --concurrency 4 --pool prefork --loglevel WARNING \
        --without-gossip --without-mingle --without-heartbeat >/dev/null 2>&1 &
    WORKER=$!

    echo "== round $round of $ROUNDS: celery + redis (4 worker processes)"
    .venv/bin/python client.py "$JOBS" "$ROUND_TRIPS" | tee -a "$ROWS"

    cleanup
    WORKER= REDIS=
    echo "== round $round of $ROUNDS: tcluster, no journal (4 worker processes)"
    "$TCLUSTER" bench dispatch --json --no-journal --jobs "$TCLUSTER_JOBS" \
        --round-trips "$ROUND_TRIPS" --workers 4 | tee -a "$ROWS"
    for DURABILITY in sync "group 1ms" "periodic 10ms" none; do
        echo "== round $round of $ROUNDS: tcluster, journal on disk, durability $DURABILITY (4 worker processes)"
        "$TCLUSTER" bench dispatch --json --jobs "$TCLUSTER_JOBS" --round-trips "$ROUND_TRIPS" \
            --workers 4 --durability "$DURABILITY" | tee -a "$ROWS"
    done
done

echo "== summary: jobs/s and round trip p50 (ms); × is against Celery in the same round"
.venv/bin/python summary.py < "$ROWS"
