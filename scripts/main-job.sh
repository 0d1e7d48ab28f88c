#!/usr/bin/env bash
# The README's main job on its defaults: what this kernel offers, then a file read through AIO.
set -euo pipefail
cd "$(dirname "$0")/.."
./build/aioloop probe
echo
echo "== aioloop cat --stats README.md (output compared with coreutils cat)"
./build/aioloop cat --stats README.md | cmp - README.md && echo "identical to README.md"
