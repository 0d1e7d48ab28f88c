#!/usr/bin/env bash
# Installs what aioloop needs to build, test and benchmark on Debian 12, as root.
# Does nothing when everything is already there, so it is cheap to call every time.
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config git clang-format
  # scripts/fuzz.sh (CI): clang with libFuzzer and its sanitizer runtimes
  clang libclang-rt-dev
  libexpected-dev libfmt-dev libcli11-dev liburing-dev libseccomp-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # real peers for tests and benchmarks
  coreutils procps strace linux-perf socat curl redis-server redis-tools haproxy nginx-light
  wrk iperf3 apache2-utils iproute2 python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
