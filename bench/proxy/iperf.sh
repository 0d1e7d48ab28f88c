#!/bin/bash
# iperf3 through each proxy (upload, then -R download), pinned; system calls per MiB from perf.
# Prints: round target direction Gbit/s syscalls_per_MiB
A=/work/main/build-proxy/aioloop
ROUNDS=${ROUNDS:-5}
taskset -c 0 iperf3 -s -p 15300 > /dev/null 2>&1 & IS=$!
sleep 0.3
taskset -c 0 $A proxy --listen 127.0.0.1:17110 --upstream 127.0.0.1:15300 --backend aio --quiet 2>/dev/null & P_aio=$!
taskset -c 0 $A proxy --listen 127.0.0.1:17111 --upstream 127.0.0.1:15300 --backend epoll --quiet 2>/dev/null & P_epoll=$!
taskset -c 0 $A proxy --listen 127.0.0.1:17112 --upstream 127.0.0.1:15300 --backend uring --quiet 2>/dev/null & P_uring=$!
sed 's/16400/15300/; s/17300/17310/' /tmp/pxbench/haproxy.cfg > /tmp/pxbench/haproxy-iperf.cfg
taskset -c 0 haproxy -f /tmp/pxbench/haproxy-iperf.cfg -db > /dev/null 2>&1 & P_haproxy=$!
sleep 0.5
declare -A PORT=([direct]=15300 [aio]=17110 [epoll]=17111 [uring]=17112 [haproxy]=17310)
declare -A PID=([direct]=$IS [aio]=$P_aio [epoll]=$P_epoll [uring]=$P_uring [haproxy]=$P_haproxy)
for r in $(seq 1 $ROUNDS); do
  for t in aio epoll uring haproxy direct; do
    for dir in up down; do
      flag=""; [ $dir = down ] && flag="-R"
      perf stat -e raw_syscalls:sys_enter -x, -o /tmp/pxbench/perf.$t -p ${PID[$t]} &
      PERF=$!
      sleep 0.2
      json=$(taskset -c 1 iperf3 -c 127.0.0.1 -p ${PORT[$t]} -t 3 $flag -J)
      kill -INT $PERF; wait $PERF 2>/dev/null
      sc=$(grep raw_syscalls /tmp/pxbench/perf.$t | cut -d, -f1)
      read bps bytes < <(echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum_received"]; print(d["bits_per_second"], d["bytes"])')
      echo "$r $t $dir $(echo "scale=2; $bps/1000000000" | bc) $(echo "scale=2; $sc * 1048576 / $bytes" | bc)"
    done
  done
done
kill $P_aio $P_epoll $P_uring $P_haproxy $IS
wait 2>/dev/null
