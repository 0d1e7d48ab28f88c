#!/bin/bash
# A dialogue of big messages through the proxy: wrk fetching the same file over and over from
# nginx (Debian nginx-light, sendfile on) through each proxy, on keep-alive connections. It shows
# what the bulk streams' receive low-water mark costs when a stream is made of messages whose ends
# fall short of it: `aio` (defaults) against `aio-nolw` (--bulk-low-water 0), side by side.
# nginx and the proxies on core 0, wrk on core 1, interleaved rounds; system calls are the
# proxy's, per request.
# Usage: ROUNDS=3 DURATION=3 CONNECTIONS=1 SIZES="64k 1m 4m" bench/proxy/messages.sh [aioloop]
# Prints: round target size requests/s avg_latency_us p99_latency_us syscalls_per_request
source "$(dirname "$0")/common.sh"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
CONNECTIONS=${CONNECTIONS:-1}
SIZES=${SIZES:-"64k 1m 4m"}
mkdir -p "$work/www" "$work/nginx"
for size in $SIZES; do
    head -c "$(numfmt --from=iec "${size^^}")" /dev/urandom > "$work/www/$size.bin"
done
cat > "$work/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log stderr error;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx;
    proxy_temp_path $work/nginx;
    fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx;
    scgi_temp_path $work/nginx;
    server { listen 127.0.0.1:18580; root $work/www; }
}
CONF
taskset -c 0 nginx -c "$work/nginx/nginx.conf" -e stderr &
declare -A PORT PID
start_proxy aio 18581 18580 --backend aio
start_proxy aio-nolw 18582 18580 --backend aio --bulk-low-water 0
start_proxy epoll 18583 18580 --backend epoll
start_proxy uring 18584 18580 --backend uring
sleep 0.5
for r in $(seq 1 "$ROUNDS"); do
    for size in $SIZES; do
        for t in aio aio-nolw epoll uring; do
            syscalls_of ${PID[$t]} taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency \
                "http://127.0.0.1:${PORT[$t]}/$size.bin" > "$work/wrk.out"
            python3 - "$r" "$t" "$size" "$(cat "$work/syscalls")" "$work/wrk.out" <<'PY'
import re, sys
r, t, size, calls, path = sys.argv[1:]
text = open(path).read()
def us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
requests = int(re.search(r"(\d+) requests in", text).group(1))
avg = re.search(r"Latency\s+([\d.]+)(us|ms|s)", text)
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"{r} {t} {size} {rate:.0f} {us(*avg.groups()):.0f} {us(*p99.groups()):.0f} "
      f"{int(calls) / max(requests, 1):.2f}")
PY
        done
    done
done
