#!/bin/sh
# Builds the libFuzzer targets with clang and runs each for a bounded time on its corpus.
#   scripts/fuzz.sh [SECONDS]   (default 60; CI: scripts/fuzz.sh 10)
# New inputs that add coverage are written to a scratch directory, not to the kept corpus;
# copy interesting ones into tests/fuzz/corpus/<target>/ by hand.
set -eu
seconds=${1:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${AIOLOOP_FUZZ_BUILD_DIR:-$src/build-fuzz}
cxx=${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14)}
if [ -z "$cxx" ]; then
    echo "fuzz.sh: clang++ not found (Debian: apt-get install clang)" >&2
    exit 1
fi
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER="$cxx" \
    -DAIOLOOP_BUILD_FUZZ=ON -DAIOLOOP_BUILD_TESTS=OFF -DAIOLOOP_BUILD_BENCH=OFF \
    -DAIOLOOP_BUILD_TOOL=OFF >/dev/null
cmake --build "$build" -j2 --target http_request_fuzz
for target in http_request; do
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    echo "fuzz.sh: ${target}_fuzz for ${seconds}s"
    "$build/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -print_final_stats=1 "$scratch" "$src/tests/fuzz/corpus/$target"
    rm -rf "$scratch"
done
