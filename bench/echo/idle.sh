#!/bin/bash
# RSS per idle echo connection on each backend: N connections (default 5000), one exchange each.
# Usage: bench/echo/idle.sh [path/to/aioloop]     (N=10000 bench/echo/idle.sh for more)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
A=${1:-$here/../build/aioloop}
N=${N:-5000}
PORT=${PORT:-17400}
ulimit -n "$(ulimit -Hn)"  # the python client holds N sockets
for b in aio epoll uring; do
    "$A" echo --listen 127.0.0.1:$PORT --backend "$b" --max-connections $((N + 1000)) --quiet &
    pid=$!
    sleep 0.5
    echo -n "$b: "
    python3 "$here/idle_rss.py" $pid $PORT "$N" echo
    kill $pid
    wait $pid 2>/dev/null || true
done
