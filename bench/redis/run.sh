#!/usr/bin/env bash
# Redis pub/sub beside tcluster's chat server, with the same clients, on the same machine in one
# go: 50 subscribers to one channel, one publisher.
#
#   bench/redis/run.sh [SUBSCRIBERS] [POSTS]
#
# Installs Debian's redis-server if it is missing, starts it on 127.0.0.1:6391 in memory (no
# RDB, no AOF), runs `tcluster bench chat --redis`, stops it, then runs `tcluster bench chat`
# in memory (at its own half load, and again at Redis's) and with its history on disk.
# Method and results: docs/performance/chat.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUBSCRIBERS=${1:-50}
POSTS=${2:-20000}
PORT=6391

if ! command -v redis-server >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
fi
TCLUSTER=${TCLUSTER:-target/release/tcluster}
[ -x "$TCLUSTER" ] || cargo build --release -q

redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --loglevel warning >/dev/null &
REDIS=$!
trap 'kill $REDIS 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.05
done

echo "== redis pub/sub"
REDIS_ROW=$("$TCLUSTER" bench chat --json --redis "127.0.0.1:$PORT" --subscribers "$SUBSCRIBERS" --posts "$POSTS")
echo "$REDIS_ROW"
kill "$REDIS"; wait "$REDIS" 2>/dev/null || true
trap - EXIT
echo "== tcluster chat, in memory"
"$TCLUSTER" bench chat --json --no-journal --subscribers "$SUBSCRIBERS" --posts "$POSTS"
# Each latency above is at half that server's own throughput; this one is at Redis's load.
REDIS_PACED=$(printf '%s' "$REDIS_ROW" | grep -o '"paced_posts_per_second":[0-9.e+]*' | cut -d: -f2)
echo "== tcluster chat, in memory, latency at redis's half load ($REDIS_PACED posts/s)"
"$TCLUSTER" bench chat --json --no-journal --subscribers "$SUBSCRIBERS" --posts "$POSTS" \
    --paced "$REDIS_PACED"
echo "== tcluster chat, history on disk"
"$TCLUSTER" bench chat --json --subscribers "$SUBSCRIBERS" --posts "$POSTS"
