#!/usr/bin/env bash
# Installs the packed tarball into a fresh project and predicts one chunk with the built-in tiny
# policy, as a user would. Modes:
#   prebuild  the tarball as packed; no compiler usable (CC/CXX fail, PATH without cmake or g++)
#   source    the same tarball without prebuilds/: the install hook must build from source
# Usage: .ci/tarball-install.sh <tarball> prebuild|source
set -euo pipefail
tarball=$(realpath "$1")
mode=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/smolvla-tarball-XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ "$mode" = source ]; then
  mkdir "$work/unpack"
  tar -xzf "$tarball" -C "$work/unpack"
  rm -rf "$work/unpack/package/prebuilds"
  tarball="$work/smolvla-node-no-prebuilds.tgz"
  tar -czf "$tarball" -C "$work/unpack" package
fi
mkdir "$work/project"
cp "$here/smoke.js" "$work/project/"
cd "$work/project"
echo '{ "name": "smolvla-tarball-check", "version": "1.0.0", "private": true }' > package.json

started=$(date +%s)
if [ "$mode" = prebuild ]; then
  # A PATH with node, npm and a shell only (no cmake, make, g++), and compilers that fail loudly.
  mkdir "$work/bin"
  printf '#!/bin/sh\necho "no compiler in this check ($0 $*)" >&2\nexit 1\n' > "$work/bin/no-compiler"
  chmod +x "$work/bin/no-compiler"
  for tool in node npm sh; do ln -s "$(command -v "$tool")" "$work/bin/$tool"; done
  PATH="$work/bin" CC="$work/bin/no-compiler" CXX="$work/bin/no-compiler" \
    npm install --no-audit --no-fund --foreground-scripts "$tarball"
  for tool in cmake g++ c++ make; do
    if PATH="$work/bin" command -v "$tool" >/dev/null; then echo "tarball check: $tool is reachable; the check is void" >&2; exit 1; fi
  done
  PATH="$work/bin" node smoke.js
else
  # The source build may reuse compiled objects (never required): ccache when it is installed.
  if command -v ccache >/dev/null; then
    export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR="$work/project"
  fi
  npm install --no-audit --no-fund --foreground-scripts "$tarball"
  node smoke.js
fi
echo "tarball install ($mode): $(( $(date +%s) - started )) s"
