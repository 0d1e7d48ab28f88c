#!/bin/bash
# iperf3 through each proxy, upload then download (-R), 64 KiB writes (-l 64K), interleaved rounds.
# The proxies run on core 0, the iperf3 client on core 1, the iperf3 server on SERVER_CORE (1: the
# proxy has a core to itself and the two iperf3 ends set the pace; 0: the proxy shares its core with
# the receiving end when uploading). System calls are the proxy's (the iperf3 server's for
# "direct"), per MiB received.
# Usage: ROUNDS=3 SECONDS_EACH=3 SERVER_CORE=1 bench/proxy/iperf.sh [path/to/aioloop]
# Prints: round target direction Gbit/s syscalls_per_MiB
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-3}
SECONDS_EACH=${SECONDS_EACH:-3}
SERVER_CORE=${SERVER_CORE:-1}
taskset -c "$SERVER_CORE" iperf3 -s -p 15300 > /dev/null 2>&1 &
declare -A PORT=([direct]=15300) PID=([direct]=$!)
start_proxy aio 17110 15300 --backend aio
start_proxy aio-64k 17111 15300 --backend aio --bulk-buffer-size 64K
start_proxy aio-nolw 17114 15300 --backend aio --bulk-low-water 0
start_proxy epoll 17112 15300 --backend epoll
start_proxy uring 17113 15300 --backend uring
targets="aio aio-nolw aio-64k epoll uring"
if command -v haproxy > /dev/null; then
    taskset -c 0 haproxy -f "$(haproxy_config 17310 15300)" -db > /dev/null 2>&1 &
    PID[haproxy]=$!
    PORT[haproxy]=17310
    targets="$targets haproxy"
fi
sleep 0.5
for r in $(seq 1 "$ROUNDS"); do
    for t in $targets direct; do
        for dir in up down; do
            flag=""
            [ $dir = down ] && flag="-R"
            syscalls_of ${PID[$t]} taskset -c 1 iperf3 -c 127.0.0.1 -p ${PORT[$t]} -t "$SECONDS_EACH" \
                -l 64K $flag -J > "$work/iperf.json"
            python3 - "$r" "$t" "$dir" "$(cat "$work/syscalls")" "$work/iperf.json" <<'PY'
import json, sys
r, t, d, calls, path = sys.argv[1:]
end = json.load(open(path))["end"]["sum_received"]
print(f"{r} {t} {d} {end['bits_per_second'] / 1e9:.2f} {int(calls) * 1048576 / end['bytes']:.2f}")
PY
        done
    done
done
