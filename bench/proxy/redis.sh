#!/bin/bash
# redis-benchmark through aioloop proxy (aio, epoll, uring), haproxy, and directly; interleaved
# rounds. Server side (redis-server, the proxies) on core 0, redis-benchmark on core 1.
# Usage: ROUNDS=5 N=100000 bench/proxy/redis.sh [path/to/aioloop]
# Prints: round target SET_ops/s GET_ops/s syscalls_per_request (the proxy's; redis's for direct)
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-5}
N=${N:-100000}
taskset -c 0 redis-server --port 16400 --bind 127.0.0.1 --save '' --appendonly no > /dev/null 2>&1 &
declare -A PORT=([direct]=16400) PID=([direct]=$!)
sleep 0.5
for b in aio epoll uring; do
    start_proxy $b $((17100 + ${#PORT[@]})) 16400 --backend $b
done
targets="direct aio epoll uring"
if command -v haproxy > /dev/null; then
    taskset -c 0 haproxy -f "$(haproxy_config 17300 16400)" -db > /dev/null 2>&1 &
    PID[haproxy]=$!
    PORT[haproxy]=17300
    targets="$targets haproxy"
fi
sleep 0.5
for r in $(seq 1 "$ROUNDS"); do
    for t in $targets; do
        syscalls_of ${PID[$t]} taskset -c 1 redis-benchmark -p ${PORT[$t]} -q -n "$N" -c 50 -P 1 \
            -t set,get > "$work/out" 2>&1
        out=$(tr '\r' '\n' < "$work/out" | grep "requests per second")
        set_ops=$(echo "$out" | grep SET | sed 's/.*SET: \([0-9.]*\).*/\1/')
        get_ops=$(echo "$out" | grep GET | sed 's/.*GET: \([0-9.]*\).*/\1/')
        echo "$r $t $set_ops $get_ops $(echo "scale=3; $(cat "$work/syscalls") / (2*$N)" | bc)"
    done
done
