#!/usr/bin/env bash
# The CUDA check, for a GPU machine that has Python torch 2.x with CUDA, CMake and a compiler but no
# Node.js (the project's lent GPU machines are like that). Two steps:
#
#   bash scripts/device-check.sh pack   # here: packs Node.js, node_modules and the nlohmann-json
#                                       # headers into .device/ (git-ignored, ~45 MB)
#   bash scripts/device-check.sh run    # there, in a copy of the repository that holds .device/:
#                                       # build against that torch, CUDA tests, full-size bench, prebuild
#
# `run` writes its logs, the bench JSON and the CUDA prebuild (a .tar.gz holding
# prebuilds/linux-x64/torch-<major.minor>-cu<XY>/) to $OUT (default /tmp/smolvla-device). Unpack the
# prebuild in the package root before `npm pack` to ship it beside the CPU one. Meant to finish in
# under 8 minutes on one H200 (16 cores): build ~2 min, tests ~1 min, bench ~3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dev=$root/.device

pack() {
  rm -rf "$dev" && mkdir -p "$dev/prefix/include/node" "$dev/prefix/bin" "$dev/prefix/share/cmake"
  cp "$(command -v node)" "$dev/prefix/bin/node"
  # N-API headers only: the addon uses no other Node.js or V8 API.
  for h in node_api.h node_api_types.h js_native_api.h js_native_api_types.h; do
    cp "$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node', '$h')")" "$dev/prefix/include/node/"
  done
  cp -r /usr/include/nlohmann "$dev/prefix/include/"
  cp -r /usr/share/cmake/nlohmann_json "$dev/prefix/share/cmake/"
  tar -C "$dev" -cJf "$dev/prefix.tar.xz" prefix && rm -rf "$dev/prefix"
  tar -C "$root" -cJf "$dev/node_modules.tar.xz" node_modules
  du -sh "$dev"/*
  echo "device-check: packed. On the GPU machine (with .device/ carried): bash scripts/device-check.sh run"
}

run() {
  local out=${OUT:-/tmp/smolvla-device}
  mkdir -p "$out"
  local started=$SECONDS
  [ -f "$dev/prefix.tar.xz" ] || { echo "device-check: .device/ is missing; run 'bash scripts/device-check.sh pack' where Node.js is" >&2; exit 1; }
  tar -C "$dev" -xJf "$dev/prefix.tar.xz"
  [ -d node_modules ] || tar -C "$root" -xJf "$dev/node_modules.tar.xz"
  export PATH="$dev/prefix/bin:$PATH" PYTHON=${PYTHON:-python3}
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" || true
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())' | tee -a "$out/gpu.txt"

  # Build against the Python torch (the loader finds it the same way at run time). cmake-js needs
  # Node's headers from the network, so plain CMake is given what cmake-js would pass.
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_JS_INC="$dev/prefix/include/node" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$root/build/Release" \
    -Dnlohmann_json_DIR="$dev/prefix/share/cmake/nlohmann_json" 2>&1 | tee "$out/build.log"
  cmake --build build -j "$(nproc)" 2>&1 | tail -5 | tee -a "$out/build.log"
  node scripts/libtorch.js describe | tee -a "$out/build.log"
  echo "device-check: build done at $((SECONDS - started)) s"

  # The CUDA tests (they report themselves skipped when no GPU is visible), the loader and parity.
  set +e
  npx jest --ci test/model/cuda.test.ts test/install/prebuilds.test.ts test/model/parity.test.ts 2>&1 | tee "$out/jest.log"
  local tests=${PIPESTATUS[0]}
  set -e
  echo "device-check: tests done at $((SECONDS - started)) s (jest exit $tests)"

  npx tsc -p tsconfig.json
  for dtype in float32 bfloat16; do
    node dist/bench/run.js --device cuda:0 --dtype "$dtype" --only full --repeats 5 --json "$out/bench-$dtype.json" 2>&1 | tee "$out/bench-$dtype.log" || true
  done
  echo "device-check: bench done at $((SECONDS - started)) s"

  node scripts/prebuild.js --out "$out/prebuilds"
  tar -C "$out" -czf "$out/prebuild-cuda.tar.gz" prebuilds && rm -rf "$out/prebuilds"
  echo "device-check: finished in $((SECONDS - started)) s; results in $out"
  return "$tests"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: bash scripts/device-check.sh pack|run" >&2; exit 2 ;;
esac
