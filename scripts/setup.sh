#!/usr/bin/env bash
# Quick start, step 1 (Debian 12, as root): system packages (libtorch only if none is found), npm
# dependencies, the native and TypeScript builds, then the main job on the built-in default.
# Pass --no-demo to stop after the build (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

run_demo=1
[ "${1:-}" = "--no-demo" ] && run_demo=0

if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "smolvla-node needs Node.js >= 20.17 (Debian 12's nodejs package is 18): install it from nodejs.org or NodeSource." >&2
  exit 1
fi

packages=()
command -v cmake >/dev/null || packages+=(cmake)
command -v g++ >/dev/null || packages+=(g++)
command -v make >/dev/null || packages+=(make)
[ -f /usr/include/nlohmann/json.hpp ] || packages+=(nlohmann-json3-dev)
# libtorch-dev alone pulls Debian's reference BLAS (slow); the pthread OpenBLAS is the fast one.
dpkg -s libopenblas0-pthread >/dev/null 2>&1 || packages+=(libopenblas0-pthread)
# oneDNN 2.x header: the fast GEMM route (prepacked weights) opens the libdnnl.so.2 libtorch already uses.
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || packages+=(libdnnl-dev)
if ! node scripts/libtorch.js describe >/dev/null 2>&1; then
  packages+=(libtorch-dev)
fi
# Debian's libtorch has c10d's Gloo backend built in but ships gloo's headers separately (data-parallel training).
if [ -f /usr/include/torch/csrc/distributed/c10d/ProcessGroupGloo.hpp ] || [[ " ${packages[*]} " == *" libtorch-dev "* ]]; then
  [ -f /usr/include/gloo/algorithm.h ] || packages+=(libgloo-dev)
fi
# ffmpeg decodes LeRobot dataset videos; python3-torch runs the PyTorch reference (fixtures, bench).
command -v ffmpeg >/dev/null || packages+=(ffmpeg)
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || packages+=(python3-torch)
# The WebSocket serving tests talk to the server from Python as openpi's clients do.
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || packages+=(python3-numpy)
/usr/bin/python3 -c 'import msgpack' >/dev/null 2>&1 || packages+=(python3-msgpack)
/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 || packages+=(python3-websockets)
if [ ${#packages[@]} -gt 0 ]; then
  echo "smolvla-node setup: installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi
echo "smolvla-node setup: $(node scripts/libtorch.js describe)"

# npm ci runs the install hook, which builds the addon with cmake-js unless a binary loads.
npm ci --no-audit --no-fund
npm run build:ts

if [ "$run_demo" = 1 ]; then
  npm run demo
fi
