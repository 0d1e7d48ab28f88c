#!/usr/bin/env bash
# CTest smoke test: start SERVER on a free port, run CLIENT for 1 s with 10 connections, expect
# >0 requests and no byte or connection errors. Bounded time; always stops the server.
# usage: smoke.sh SERVER CLIENT
set -u
server=$1 client=$2
spid=
trap '[[ -n $spid ]] && { kill $spid 2>/dev/null; sleep 0.1; kill -9 $spid 2>/dev/null; }' EXIT

for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    "$server" "$port" &
    spid=$!
    for _ in $(seq 40); do # up to 2 s to start listening
        kill -0 $spid 2>/dev/null || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break 2; fi
        sleep 0.05
    done
    kill $spid 2>/dev/null
    wait $spid 2>/dev/null
    spid=
done
[[ -n $spid ]] || { echo "server did not start" >&2; exit 1; }

out=$(timeout 15 "$client" -c 10 -s 64 -d 1 127.0.0.1 "$port")
rc=$?
echo "$out"
[[ $rc -eq 0 ]] || { echo "client failed (rc $rc)" >&2; exit 1; }
set -- $out
[[ $2 -gt 0 ]] || { echo "no requests completed" >&2; exit 1; }
# a bigger message exercises partial reads and writes
out=$(timeout 15 "$client" -c 3 -s 200000 -d 1 127.0.0.1 "$port") || {
    echo "large-message client failed: $out" >&2
    exit 1
}
echo "$out"
kill -0 $spid || { echo "server died" >&2; exit 1; }
