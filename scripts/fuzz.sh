#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for SECONDS
# (default 60) from its seed corpus in tests/fuzz/corpus_<name>. Exit non-zero
# on any crash or sanitizer report; the crashing input is left in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bash scripts/install-deps.sh --fuzz # clang, its libFuzzer runtime and the build packages
CC=clang cmake -S . -B build-fuzz -DDUMONT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
for bin in build-fuzz/tests/fuzz_*; do
  name=$(basename "$bin")
  corpus=build-fuzz/corpus_${name#fuzz_}
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus_${name#fuzz_}/* "$corpus"/ 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s"
  (cd build-fuzz && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "../$bin" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "../$corpus" 2>&1 | tail -n 12)
done
