#!/usr/bin/env bash
# Coverage-guided fuzzing kept with the code (libFuzzer, Debian's clang):
#   1. the safetensors header parser (native/io/safetensors_header.cc, built without libtorch) under
#      AddressSanitizer + UndefinedBehaviorSanitizer, for FUZZ_SECONDS (default 120);
#   2. the config.json parser and the public API: the seeded JS fuzz suites of the jest tests,
#      scaled up (SMOLVLA_FUZZ=1) — JavaScript cannot run under libFuzzer here.
# Usage: scripts/fuzz.sh [seconds]. Needs clang and libFuzzer's runtime; as root it installs them
# (apt-get install clang-14 libclang-rt-14-dev). Findings are written to build/fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${FUZZ_SECONDS:-120}}"

cxx=""
for c in clang++ clang++-16 clang++-15 clang++-14; do
  if command -v "$c" >/dev/null; then cxx="$c"; break; fi
done
if [ -z "$cxx" ]; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev
    cxx=clang++-14
  else
    echo "fuzz.sh: needs clang++ with libFuzzer (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
  fi
fi

out=build/fuzz
mkdir -p "$out/findings" "$out/corpus"
cp -n fuzz/corpus/safetensors/* "$out/corpus/" 2>/dev/null || true
echo "fuzz.sh: building the safetensors header fuzzer with $cxx"
"$cxx" -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Inative fuzz/safetensors_header_fuzz.cc native/io/safetensors_header.cc -o "$out/safetensors_header_fuzz"

echo "fuzz.sh: fuzzing the safetensors header parser for ${seconds}s"
# -timeout: one input taking over 5 s is reported as a hang; -rss_limit_mb bounds memory.
"$out/safetensors_header_fuzz" "$out/corpus" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
  -max_len=65536 -dict=fuzz/safetensors.dict -artifact_prefix="$out/findings/" -print_final_stats=1 2>&1 | tail -n 25

echo "fuzz.sh: JS fuzz of the config parser, the public API and corrupt files (scaled up)"
SMOLVLA_FUZZ=1 npx jest test/fuzz
