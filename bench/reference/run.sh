#!/usr/bin/env bash
# Interleaved comparison of the reference echo servers: each server pinned to core 0, ref_client
# pinned to core 1, perf counting the server's system calls, /proc/PID/stat its CPU time.
#
# usage: bench/reference/run.sh [BUILD_DIR=build]
# env:   ROUNDS=3 DURATION=5 CONNS=200 SIZE=64 SERVERS="aio epoll uring" PORT=24700
set -euo pipefail

BUILD=${1:-build}
BIN=$BUILD/bench/reference
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} CONNS=${CONNS:-200} SIZE=${SIZE:-64}
SERVERS=${SERVERS:-"aio epoll uring"} PORT=${PORT:-24700}
PERF=${PERF:-perf}
TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.2
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for s in $SERVERS; do
    [[ -x $BIN/ref_echo_$s ]] || { echo "missing $BIN/ref_echo_$s (build it first)" >&2; exit 2; }
done
[[ -x $BIN/ref_client ]] || { echo "missing $BIN/ref_client" >&2; exit 2; }

cpu_ticks() { # utime + stime of PID, in clock ticks
    local st
    st=$(<"/proc/$1/stat")
    st=${st##*) }
    awk '{ print $12 + $13 }' <<<"$st"
}

wait_listening() { # up to 5 s
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

printf '%-6s %5s %10s %12s %12s %12s\n' server round req/s syscalls/req cpu_us/req client_us/req
for round in $(seq "$ROUNDS"); do
    for s in $SERVERS; do
        PORT=$((PORT + 1))
        taskset -c 0 "$BIN/ref_echo_$s" "$PORT" 2>/dev/null &
        spid=$!
        PIDS+=("$spid")
        wait_listening "$PORT" || { echo "ref_echo_$s did not start" >&2; exit 1; }
        "$PERF" stat -x, -e raw_syscalls:sys_enter -o "$TMP/perf" -p "$spid" &
        ppid=$!
        PIDS+=("$ppid")
        sleep 0.3
        c0=$(cpu_ticks "$spid")
        out=$(timeout $((DURATION + 20)) taskset -c 1 "$BIN/ref_client" -c "$CONNS" -s "$SIZE" \
            -d "$DURATION" 127.0.0.1 "$PORT") || { echo "client failed: $out" >&2; exit 1; }
        c1=$(cpu_ticks "$spid")
        kill -INT "$ppid"
        timeout 10 tail --pid="$ppid" -f /dev/null || kill -9 "$ppid"
        kill "$spid"
        timeout 5 tail --pid="$spid" -f /dev/null || kill -9 "$spid"
        sys=$(awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$TMP/perf")
        set -- $out # requests R seconds T req/s X client_cpu_us/req U byte_errors E ...
        awk -v s="$s" -v r="$round" -v req="$2" -v rps="$6" -v cl="$8" -v sys="$sys" \
            -v cpu=$((c1 - c0)) -v tck="$TCK" 'BEGIN {
            printf "%-6s %5d %10d %12.3f %12.2f %12.2f\n", s, r, rps, sys / req,
                   cpu * 1e6 / tck / req, cl }' | tee -a "$TMP/rows"
    done
done

echo
echo "mean over $ROUNDS interleaved rounds ($CONNS connections, $SIZE-byte messages, ${DURATION}s):"
printf '%-6s %10s %12s %12s %12s\n' server req/s syscalls/req cpu_us/req client_us/req
for s in $SERVERS; do
    awk -v s="$s" '$1 == s { n++; a += $3; b += $4; c += $5; d += $6 } END {
        if (n) printf "%-6s %10d %12.3f %12.2f %12.2f\n", s, a / n, b / n, c / n, d / n }' \
        "$TMP/rows"
done
