#!/bin/bash
# `aioloop http` on each backend against nginx (Debian nginx-light: one process, sendfile on,
# access_log off, open_file_cache on), serving the same directory, in interleaved rounds:
#   wrk -t1 -c50 -d${DURATION}s on a 1 KiB file, a 1 MiB file, and a cold set (random 1 MiB files
#   out of COLD_MIB MiB) read by servers whose page cache is limited to CACHE_MIB by a cgroup v1
#   memory limit, with the page cache also dropped before each cold run.
# Servers pinned `taskset -c 0`, wrk `taskset -c 1`; system calls counted with
# `perf stat -e raw_syscalls:sys_enter -p PID` during each run (all of the server's threads).
# Prints one line per run and a table of medians (markdown).
# Usage: ROUNDS=3 DURATION=5 bench/http/nginx.sh [path/to/aioloop]   (root, for the cgroup)
set -eu
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
A=$(realpath "${1:-$bench_dir/../../build/aioloop}")
[ -x "$A" ] || { echo "no aioloop binary at $A (build first, or pass its path)" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
COLD_MIB=${COLD_MIB:-1024}
CACHE_MIB=${CACHE_MIB:-256}
SERVERS=${SERVERS:-"aio epoll uring nginx"}
WORKLOADS=${WORKLOADS:-"1k 1m cold"}
PORT=18480
# On the root filesystem (ext4 here), not /tmp, which could be tmpfs: cold must mean disk.
work=$(mktemp -d /var/tmp/aioloop-http-bench.XXXXXX)
cg=/sys/fs/cgroup/memory/aioloop-http-bench
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [ -d "$cg" ] && rmdir "$cg" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www/cold" "$work/nginx"
head -c 1024 /dev/urandom > "$work/www/1k.bin"
head -c $((1 << 20)) /dev/urandom > "$work/www/1m.bin"
for i in $(seq 1 "$COLD_MIB"); do
    head -c $((1 << 20)) /dev/urandom > "$work/www/cold/f$i.bin"
done
sync
cat > "$work/cold.lua" <<EOF
math.randomseed(os.time())
request = function()
    return wrk.format(nil, "/cold/f" .. math.random($COLD_MIB) .. ".bin")
end
EOF
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1024 inactive=10s;
    client_body_temp_path $work/nginx;
    proxy_temp_path $work/nginx;
    fastcgi_temp_path $work/nginx;
    uwsgi_temp_path $work/nginx;
    scgi_temp_path $work/nginx;
    types { application/octet-stream bin; }
    server {
        listen 127.0.0.1:$PORT reuseport;
        root $work/www;
    }
}
EOF

have_cgroup=0
if [ -d /sys/fs/cgroup/memory ] && mkdir -p "$cg" 2>/dev/null; then
    echo $((CACHE_MIB << 20)) > "$cg/memory.limit_in_bytes" && have_cgroup=1
fi
[ "$have_cgroup" = 1 ] || echo "no cgroup v1 memory controller: cold runs only drop caches" >&2

start_server() { # name cold?
    if [ "$1" = nginx ]; then
        taskset -c 0 nginx -c "$work/nginx/nginx.conf" -e stderr &
    else
        taskset -c 0 "$A" http --listen 127.0.0.1:$PORT --backend "$1" --root "$work/www" \
            --quiet 2>/dev/null &
    fi
    server_pid=$!
    if [ "$2" = 1 ] && [ "$have_cgroup" = 1 ]; then
        echo "$server_pid" > "$cg/cgroup.procs"
    fi
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/1k.bin" && return 0
        sleep 0.1
    done
    echo "$1 did not start" >&2
    return 1
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

results=$work/results.tsv
: > "$results"
for round in $(seq 1 "$ROUNDS"); do
    for workload in $WORKLOADS; do
        # Rotate the order each round, so that no server always runs first.
        order=($SERVERS)
        shift_by=$(((round - 1) % ${#order[@]}))
        order=("${order[@]:$shift_by}" "${order[@]:0:$shift_by}")
        for name in "${order[@]}"; do
            cold=0
            url=http://127.0.0.1:$PORT/1k.bin
            script=()
            case $workload in
            1m) url=http://127.0.0.1:$PORT/1m.bin ;;
            cold)
                cold=1
                script=(-s "$work/cold.lua")
                sync
                echo 3 > /proc/sys/vm/drop_caches
                ;;
            esac
            start_server "$name" "$cold"
            perf stat -e raw_syscalls:sys_enter -x, -o "$work/perf" -p "$server_pid" &
            perf_pid=$!
            sleep 0.2
            out=$(taskset -c 1 wrk -t1 -c50 -d"${DURATION}s" --latency "${script[@]}" "$url")
            kill -INT "$perf_pid"
            wait "$perf_pid" 2>/dev/null || true
            stop_server
            syscalls=$(grep raw_syscalls "$work/perf" | cut -d, -f1)
            rps=$(echo "$out" | awk '/Requests\/sec:/ {print $2}')
            requests=$(echo "$out" | awk '/requests in/ {print $1}')
            p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
            p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
            errors=$(echo "$out" | grep -E "Non-2xx|Socket errors" | tr '\n' ' ')
            per_req=$(python3 -c "print(f'{$syscalls / max($requests, 1):.2f}')")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$workload" "$name" "$rps" "$p50" \
                "$p99" "$per_req" >> "$results"
            echo "round $round $workload $name: $rps req/s, p50 $p50, p99 $p99," \
                "$per_req syscalls/request $errors"
        done
    done
done

python3 - "$results" "$SERVERS" "$WORKLOADS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
servers, workloads = sys.argv[2].split(), sys.argv[3].split()
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float("nan")
print("\n| file | server | req/s | vs nginx | p50 ms | p99 ms | syscalls/req |")
print("|---|---|---:|---:|---:|---:|---:|")
for w in workloads:
    med = {}
    for s in servers:
        r = [x for x in rows if x[1] == w and x[2] == s]
        if r:
            med[s] = (statistics.median(float(x[3]) for x in r),
                      statistics.median(ms(x[4]) for x in r),
                      statistics.median(ms(x[5]) for x in r),
                      statistics.median(float(x[6]) for x in r))
    for s, (rps, p50, p99, sc) in med.items():
        ratio = rps / med["nginx"][0] if "nginx" in med and med["nginx"][0] else float("nan")
        print(f"| {w} | {s} | {rps:.0f} | {ratio:.2f} | {p50:.2f} | {p99:.2f} | {sc:.2f} |")
EOF
