#!/usr/bin/env node
// Locates libtorch for the node-gyp build (binding.gyp) the same way CMakeLists.txt does:
// $LIBTORCH, then a Python torch install, then the system (Debian's libtorch-dev).
// Usage: node scripts/libtorch.js include|libdirs|c10d-defines|describe
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function fromDir(root, source) {
  const include = [path.join(root, 'include'), path.join(root, 'include', 'torch', 'csrc', 'api', 'include')];
  return { source, root, include, libdir: path.join(root, 'lib') };
}

function locate() {
  if (process.env.LIBTORCH) {
    if (!fs.existsSync(path.join(process.env.LIBTORCH, 'include', 'torch'))) {
      throw new Error(`LIBTORCH=${process.env.LIBTORCH} has no include/torch; point it at an unpacked libtorch folder`);
    }
    return fromDir(process.env.LIBTORCH, 'LIBTORCH environment variable');
  }
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    try {
      const dir = execFileSync(py, ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
      // Same rule as cmake/FindLibtorch.cmake: a usable install ships its CMake package.
      if (fs.existsSync(path.join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'))) {
        return fromDir(dir, `Python torch (${py})`);
      }
    } catch {
      // not this interpreter
    }
  }
  const triplet = `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  if (fs.existsSync('/usr/include/torch/csrc/api/include/torch/torch.h')) {
    return {
      source: 'system',
      root: '/usr',
      include: ['/usr/include', '/usr/include/torch/csrc/api/include'],
      libdir: fs.existsSync(`/usr/lib/${triplet}/libtorch.so`) ? `/usr/lib/${triplet}` : '/usr/lib',
    };
  }
  throw new Error(
    'libtorch was not found (tried $LIBTORCH, a Python torch install, the system).\n' +
      '  Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread\n' +
      '  Any platform:  unzip libtorch from pytorch.org and export LIBTORCH=/path/to/libtorch',
  );
}

// USE_C10D_GLOO when gloo's headers are found next to libtorch's (or /usr/include, Debian's libgloo-dev),
// as CMakeLists.txt decides; NCCL is left to the cmake-js build (it also needs the CUDA toolkit).
function c10dDefines(found) {
  const gloo = [...found.include, '/usr/include'].some((dir) => fs.existsSync(path.join(dir, 'gloo', 'algorithm.h')));
  return gloo ? ['USE_C10D_GLOO'] : [];
}

if (require.main === module) {
  const found = locate();
  const what = process.argv[2];
  if (what === 'include') console.log(found.include.join(' '));
  else if (what === 'libdirs') console.log(found.libdir);
  else if (what === 'c10d-defines') console.log(c10dDefines(found).join(' '));
  else console.log(`libtorch from ${found.source}: ${found.root} (libs in ${found.libdir})`);
}

module.exports = { locate };
