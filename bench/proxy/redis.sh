#!/bin/bash
# redis-benchmark through aioloop proxy (aio, epoll, uring), haproxy, and direct; interleaved rounds.
# Server side (redis-server, proxies) pinned to core 0, load to core 1.
# Prints: round target ops_set ops_get syscalls_per_request
set -u
A=/work/main/build-proxy/aioloop
ROUNDS=${ROUNDS:-5}
N=${N:-100000}
taskset -c 0 redis-server --port 16400 --bind 127.0.0.1 --save '' --appendonly no > /dev/null 2>&1 &
RS=$!
sleep 0.5
taskset -c 0 $A proxy --listen 127.0.0.1:17100 --upstream 127.0.0.1:16400 --backend aio --quiet 2>/dev/null & P_aio=$!
taskset -c 0 $A proxy --listen 127.0.0.1:17101 --upstream 127.0.0.1:16400 --backend epoll --quiet 2>/dev/null & P_epoll=$!
taskset -c 0 $A proxy --listen 127.0.0.1:17102 --upstream 127.0.0.1:16400 --backend uring --quiet 2>/dev/null & P_uring=$!
taskset -c 0 haproxy -f /tmp/pxbench/haproxy.cfg -db > /dev/null 2>&1 & P_haproxy=$!
sleep 0.5
declare -A PORT=([direct]=16400 [aio]=17100 [epoll]=17101 [uring]=17102 [haproxy]=17300)
declare -A PID=([direct]=$RS [aio]=$P_aio [epoll]=$P_epoll [uring]=$P_uring [haproxy]=$P_haproxy)
for r in $(seq 1 $ROUNDS); do
  for t in direct aio epoll uring haproxy; do
    perf stat -e raw_syscalls:sys_enter -x, -o /tmp/pxbench/perf.$t -p ${PID[$t]} &
    PERF=$!
    sleep 0.2
    out=$(taskset -c 1 redis-benchmark -p ${PORT[$t]} -q -n $N -c 50 -P 1 -t set,get 2>&1 | tr '\r' '\n' | grep "requests per second")
    kill -INT $PERF; wait $PERF 2>/dev/null
    sc=$(grep raw_syscalls /tmp/pxbench/perf.$t | cut -d, -f1)
    set_ops=$(echo "$out" | grep SET | sed 's/.*SET: \([0-9.]*\).*/\1/')
    get_ops=$(echo "$out" | grep GET | sed 's/.*GET: \([0-9.]*\).*/\1/')
    echo "$r $t $set_ops $get_ops $(echo "scale=3; $sc / (2*$N)" | bc)"
  done
done
kill $P_aio $P_epoll $P_uring $P_haproxy $RS
wait 2>/dev/null
