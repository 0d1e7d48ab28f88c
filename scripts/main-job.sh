#!/usr/bin/env bash
# The README's main job: what this kernel offers, then the headline benchmark on its defaults
# (echo server, 200 connections, 64-byte messages, aio vs epoll vs io_uring, 3 interleaved rounds
# of 3 s; server pinned to core 0, load to core 1), then the same servers at a fixed offered rate
# that leaves the load generator headroom (on two cores a closed loop can be client-bound for the
# fastest servers; the bench says so per round). Under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
./build/aioloop probe
echo
./build/aioloop bench --pin
echo
./build/aioloop bench --pin --rate 40000 --rounds 2 --duration 2
