#!/bin/bash
# RSS per idle proxied pair on each backend and for haproxy: N pairs (default 5000) to
# redis-server, one PING each.
# Usage: N=5000 bench/proxy/idle.sh [path/to/aioloop]
source "$(dirname "$0")/common.sh"
N=${N:-5000}
ulimit -n "$(ulimit -Hn)"
redis-server --port 16401 --bind 127.0.0.1 --save '' --appendonly no --maxclients $((N + 2000)) > /dev/null 2>&1 &
sleep 0.5
measure() { # name command...
    local name=$1
    shift
    "$@" > /dev/null 2>&1 &
    local pid=$!
    sleep 0.5
    echo -n "$name: "
    python3 "$bench_dir/../idle_rss.py" $pid 17200 "$N" redis
    kill $pid
    wait $pid 2>/dev/null || true
}
for b in aio epoll uring; do
    measure $b "$A" proxy --listen 127.0.0.1:17200 --upstream 127.0.0.1:16401 --backend $b \
        --max-connections $((N + 1000)) --quiet
done
if command -v haproxy > /dev/null; then
    measure haproxy haproxy -f "$(haproxy_config 17200 16401)" -db
fi
