#!/usr/bin/env bash
# Redis pub/sub beside tcluster's chat server, with the same clients, on the same machine in one
# go: 50 subscribers to one channel, one publisher.
#
#   bench/redis/run.sh [SUBSCRIBERS] [POSTS] [ROUNDS]
#
# Installs Debian's redis-server if it is missing. Each round starts it on 127.0.0.1:6391 in
# memory (no RDB, no AOF), runs `tcluster bench chat --redis`, stops it, then runs `tcluster
# bench chat` in memory (at its own half load, and again at Redis's), with its history on
# disk (each batch forced to disk before its answers, then every 10 ms: `durability periodic
# 10ms`), and in memory with deliveries as JSON lines (the other rows' subscribers ask for
# MessagePack). Every row is printed as JSON as it comes; after the last round, a summary: each
# round's ratios against Redis in the same round, their ranges and medians, each server's CPU
# per delivery in its throughput run, and tcluster's two in-memory throughput runs of the round
# against each other (the same binary twice: the spread of the machine itself). Method and results: docs/performance/chat.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUBSCRIBERS=${1:-50}
POSTS=${2:-20000}
ROUNDS=${3:-1}
. bench/common.sh
whole SUBSCRIBERS "$SUBSCRIBERS"
whole POSTS "$POSTS"
whole ROUNDS "$ROUNDS"
PORT=6391

if ! command -v redis-server >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
fi
TCLUSTER=${TCLUSTER:-target/release/tcluster}
[ -x "$TCLUSTER" ] || cargo build --release -q
port_free "$PORT"

# A number from a row: `field ROW KEY` (the first KEY in it; `p99` is the latency's).
field() { printf '%s' "$1" | grep -o "\"$2\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
# The server's CPU per delivery in the throughput run, from a row (0 where it was not measured).
server_us() {
    printf '%s' "$1" | grep -o '"throughput_server_cpu":{[^}]*}' | grep -o '"per_delivery_us":[0-9.e+-]*' \
        | cut -d: -f2 | grep . || echo 0
}

SUMMARY=""
for round in $(seq "$ROUNDS"); do
    redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
        --loglevel warning >/dev/null &
    REDIS=$!
    trap 'kill $REDIS 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
        sleep 0.05
    done

    echo "== round $round of $ROUNDS: redis pub/sub"
    REDIS_ROW=$("$TCLUSTER" bench chat --json --redis "127.0.0.1:$PORT" --subscribers "$SUBSCRIBERS" --posts "$POSTS")
    echo "$REDIS_ROW"
    kill "$REDIS"; wait "$REDIS" 2>/dev/null || true
    trap - EXIT
    echo "== round $round of $ROUNDS: tcluster chat, in memory"
    MEMORY_ROW=$("$TCLUSTER" bench chat --json --no-journal --subscribers "$SUBSCRIBERS" --posts "$POSTS")
    echo "$MEMORY_ROW"
    # Each latency above is at half that server's own throughput; this one is at Redis's load.
    REDIS_PACED=$(field "$REDIS_ROW" paced_posts_per_second)
    echo "== round $round of $ROUNDS: tcluster chat, in memory, latency at redis's half load ($REDIS_PACED posts/s)"
    PACED_ROW=$("$TCLUSTER" bench chat --json --no-journal --subscribers "$SUBSCRIBERS" --posts "$POSTS" \
        --paced "$REDIS_PACED")
    echo "$PACED_ROW"
    echo "== round $round of $ROUNDS: tcluster chat, history on disk"
    DISK_ROW=$("$TCLUSTER" bench chat --json --subscribers "$SUBSCRIBERS" --posts "$POSTS")
    echo "$DISK_ROW"
    # The same, its commits forced to disk every 10 ms rather than before each batch's answers.
    echo "== round $round of $ROUNDS: tcluster chat, history on disk, durability periodic 10ms"
    PERIODIC_ROW=$("$TCLUSTER" bench chat --json --durability "periodic 10ms" --subscribers "$SUBSCRIBERS" \
        --posts "$POSTS")
    echo "$PERIODIC_ROW"
    # The rows above read MessagePack deliveries (the subscribers ask for them); this one reads
    # JSON lines, what a client that never asks gets.
    echo "== round $round of $ROUNDS: tcluster chat, in memory, deliveries as JSON lines"
    JSON_ROW=$("$TCLUSTER" bench chat --json --no-journal --encoding json --subscribers "$SUBSCRIBERS" \
        --posts "$POSTS")
    echo "$JSON_ROW"
    SUMMARY+="$round $(field "$REDIS_ROW" deliveries_per_second) $(field "$REDIS_ROW" p99) \
$(field "$MEMORY_ROW" deliveries_per_second) $(field "$MEMORY_ROW" p99) $(field "$PACED_ROW" p99) \
$(field "$DISK_ROW" deliveries_per_second) $(server_us "$REDIS_ROW") \
$(server_us "$MEMORY_ROW") $(field "$JSON_ROW" deliveries_per_second) \
$(field "$PERIODIC_ROW" deliveries_per_second) $(field "$PACED_ROW" deliveries_per_second)"$'\n'
done

echo "== summary: deliveries/s and p99 at half load (ms); each ratio is against Redis in the same round;"
echo "   server µs: each server's CPU per delivery in its throughput run (Redis / tcluster in memory);"
echo "   json: tcluster in memory with deliveries as JSON lines (the other tcluster rows: MessagePack);"
echo "   on disk: each batch forced to disk before its answers (durability sync); periodic: every 10 ms;"
echo "   itself: tcluster's second in-memory throughput run (the --paced row's) against its first, the"
echo "   same binary twice: how far apart two runs of one server land in a round on this machine"
printf '%s' "$SUMMARY" | awk '
    BEGIN {
        printf "%-6s %12s %8s %12s %7s %8s %13s %12s %7s %12s %7s %16s %12s %7s %7s\n", "round", "redis", "p99", "in memory", "ratio", "p99", "p99 @ redis", "on disk", "ratio", "periodic", "ratio", "server µs r / t", "json", "ratio", "itself"
    }
    {
        m = $4 / $2; d = $7 / $2; q = $11 / $2; t = $12 / $4
        printf "%-6s %12.0f %8.2f %12.0f %6.2f× %8.2f %13.2f %12.0f %6.2f× %12.0f %6.2f× %7.2f / %6.2f %12.0f %6.2f× %6.2f×\n", $1, $2, $3, $4, m, $5, $6, $7, d, $11, q, $8, $9, $10, $10 / $2, t
        if (NR == 1 || m < lo_m) lo_m = m; if (NR == 1 || m > hi_m) hi_m = m
        if (NR == 1 || d < lo_d) lo_d = d; if (NR == 1 || d > hi_d) hi_d = d
        if (NR == 1 || q < lo_q) lo_q = q; if (NR == 1 || q > hi_q) hi_q = q
        if (NR == 1 || t < lo_t) lo_t = t; if (NR == 1 || t > hi_t) hi_t = t
        if (NR == 1 || $5 < lo_p) lo_p = $5; if (NR == 1 || $5 > hi_p) hi_p = $5
        if (m >= 1.0) met_m++; if (d >= 0.8) met_d++; if (q >= 0.8) met_q++; if ($5 <= 2.0) met_p++
        ms[NR] = m; ds[NR] = d; qs[NR] = q
    }
    # The middle of n values (the mean of the two middle ones when n is even), sorted in place.
    function median(v, n,    i, j, t) {
        for (i = 2; i <= n; i++) {
            t = v[i]
            for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
            v[j + 1] = t
        }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    END {
        printf "in memory %.2f–%.2f× (≥ 1.0× in %d of %d); p99 at its own half load %.2f–%.2f ms (≤ 2 ms in %d); on disk %.2f–%.2f× (≥ 0.8× in %d)\n", lo_m, hi_m, met_m, NR, lo_p, hi_p, met_p, lo_d, hi_d, met_d
        printf "on disk, durability periodic 10ms: %.2f–%.2f× (≥ 0.8× in %d of %d)\n", lo_q, hi_q, met_q, NR
        printf "tcluster in memory against itself: %.2f–%.2f× (the spread any two runs of one server can show here)\n", lo_t, hi_t
        printf "medians over the rounds: in memory %.2f×, on disk %.2f×, periodic %.2f×\n", median(ms, NR), median(ds, NR), median(qs, NR)
    }'
