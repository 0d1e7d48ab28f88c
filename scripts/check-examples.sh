#!/usr/bin/env bash
# Builds examples/ and tests/consumer/ against an installed aioloop, as a user would, and runs
# them. Usage: scripts/check-examples.sh PREFIX
set -euo pipefail
prefix=$1
cd "$(dirname "$0")/.."

cmake -S tests/consumer -B build-consumer -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON >/dev/null
cmake --build build-consumer -j2
ctest --test-dir build-consumer --output-on-failure

cmake -S examples -B build-examples -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON >/dev/null
cmake --build build-examples -j2
timeout 10 build-examples/client_with_timeout
timeout 10 build-examples/timers_and_post

# The echo server: start it on a free port, echo a line through socat, stop it with Ctrl-C.
log=$(mktemp)
build-examples/echo_server 0 >"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do
  grep -q "listening on" "$log" && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$log")
reply=$(echo "hello aioloop" | timeout 5 socat -t 1 - "TCP:127.0.0.1:$port")
[ "$reply" = "hello aioloop" ] || { echo "echo_server answered '$reply'"; exit 1; }
kill -INT $server
wait $server
echo "examples: all ran"
