#!/bin/bash
# RSS per idle proxied pair, each backend and haproxy, 5000 pairs to redis-server.
A=/work/main/build-proxy/aioloop
N=${N:-5000}
redis-server --port 16401 --bind 127.0.0.1 --save '' --appendonly no --maxclients 12000 > /dev/null 2>&1 & RS=$!
sleep 0.5
for b in aio epoll uring; do
  $A proxy --listen 127.0.0.1:17200 --upstream 127.0.0.1:16401 --backend $b --max-connections 10000 --quiet 2>/dev/null & P=$!
  sleep 0.5
  echo -n "$b: "; python3 /tmp/pxbench/idle.py $P 17200 $N
  kill $P; wait $P 2>/dev/null
done
sed 's/16400/16401/; s/17300/17301/' /tmp/pxbench/haproxy.cfg > /tmp/pxbench/haproxy-idle.cfg
haproxy -f /tmp/pxbench/haproxy-idle.cfg -db > /dev/null 2>&1 & P=$!
sleep 0.5
echo -n "haproxy: "; python3 /tmp/pxbench/idle.py $P 17301 $N
kill $P $RS; wait 2>/dev/null
