# Sourced by the bench/proxy scripts: the aioloop binary (first argument, default build/aioloop),
# a scratch directory removed on exit, and haproxy configured like the proxy under test (one
# thread, TCP mode, no logging).
set -eu
bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
A=$(realpath "${1:-$bench_dir/../../build/aioloop}")
[ -x "$A" ] || { echo "no aioloop binary at $A (build first, or pass its path)" >&2; exit 1; }
work=$(mktemp -d)
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# haproxy_config LISTEN_PORT UPSTREAM_PORT: writes $work/haproxy-LISTEN.cfg and prints its path.
haproxy_config() {
    local cfg=$work/haproxy-$1.cfg
    sed "s/@LISTEN@/$1/; s/@UPSTREAM@/$2/" "$bench_dir/haproxy.cfg" > "$cfg"
    echo "$cfg"
}

# start_proxy NAME PORT UPSTREAM_PORT ARGS...: `aioloop proxy` on core 0 from 127.0.0.1:PORT to
# 127.0.0.1:UPSTREAM_PORT with ARGS; its pid goes to PID[NAME] and its port to PORT[NAME] (the
# caller declares both: declare -A PID PORT).
start_proxy() {
    local name=$1 port=$2 upstream=$3
    shift 3
    taskset -c 0 "$A" proxy --listen 127.0.0.1:$port --upstream 127.0.0.1:$upstream --quiet "$@" \
        2>/dev/null &
    PID[$name]=$!
    PORT[$name]=$port
}

# syscalls_of PID COMMAND...: runs COMMAND while perf counts PID's system calls; the count goes to
# $work/syscalls, COMMAND's output to stdout.
syscalls_of() {
    local pid=$1
    shift
    perf stat -e raw_syscalls:sys_enter -x, -o "$work/perf" -p "$pid" &
    local perf_pid=$!
    sleep 0.2
    "$@"
    kill -INT $perf_pid
    wait $perf_pid 2>/dev/null || true
    grep raw_syscalls "$work/perf" | cut -d, -f1 > "$work/syscalls"
}
