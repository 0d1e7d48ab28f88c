#!/usr/bin/env bash
# The README's main job: what this kernel offers, then the headline benchmark on its defaults
# (echo server, 200 connections, 64-byte messages, aio vs epoll vs io_uring, 3 interleaved rounds
# of 3 s; server pinned to core 0, load to core 1). Under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
./build/aioloop probe
echo
./build/aioloop bench --pin
