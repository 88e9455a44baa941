#!/usr/bin/env node
// Finds libtorch the same way for the build (CMakeLists.txt via cmake/FindLibtorch.cmake, binding.gyp)
// and for loading at run time (scripts/load-addon.js): $LIBTORCH, then a Python torch install, then
// the system (Debian's libtorch-dev), and tells its version and flavour (cpu, cu121, ...).
// Usage: node scripts/libtorch.js include|libdirs|describe|json
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

function fromDir(root, source) {
  const include = [path.join(root, 'include'), path.join(root, 'include', 'torch', 'csrc', 'api', 'include')];
  return { source, root, include, libdir: path.join(root, 'lib') };
}

/** The folder of the `torch` package an interpreter would import, without importing it (fast). */
function pythonTorchDir(py) {
  try {
    return execFileSync(
      py,
      ['-c', "import importlib.util as u; s = u.find_spec('torch'); print(s.submodule_search_locations[0] if s else '')"],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10000 },
    ).trim();
  } catch {
    return ''; // no such interpreter, or it has no torch
  }
}

function locate() {
  if (process.env.LIBTORCH) {
    if (!fs.existsSync(path.join(process.env.LIBTORCH, 'include', 'torch'))) {
      throw new Error(`LIBTORCH=${process.env.LIBTORCH} has no include/torch; point it at an unpacked libtorch folder`);
    }
    return fromDir(process.env.LIBTORCH, 'LIBTORCH environment variable');
  }
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    const dir = pythonTorchDir(py);
    // Same rule as cmake/FindLibtorch.cmake: a usable install ships its CMake package.
    if (dir && fs.existsSync(path.join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'))) {
      return fromDir(dir, `Python torch (${py})`);
    }
  }
  const triplet = `${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  const libdir = [`/usr/lib/${triplet}`, '/usr/lib'].find((d) => findLibrary(d, 'libtorch_cpu'));
  if (libdir) {
    return { source: 'system', root: '/usr', include: ['/usr/include', '/usr/include/torch/csrc/api/include'], libdir };
  }
  throw new Error(
    'libtorch was not found (tried $LIBTORCH, a Python torch install, the system).\n' +
      '  Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread\n' +
      '  Any platform:  unzip libtorch from pytorch.org and export LIBTORCH=/path/to/libtorch',
  );
}

/** `name.so` in dir, else its shortest versioned file (`name.so.1.13`): runtime-only installs lack the bare name. */
function findLibrary(dir, name) {
  let entries;
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return null;
  }
  if (entries.includes(`${name}.so`)) return path.join(dir, `${name}.so`);
  const versioned = entries.filter((e) => e.startsWith(`${name}.so.`)).sort((a, b) => a.length - b.length);
  return versioned.length ? path.join(dir, versioned[0]) : null;
}

const read = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null);

/**
 * Version ("2.4.1") and CUDA version ("12.1", or "" for CPU builds, null when unknown) of the libtorch
 * in libdir, from what each kind of install ships: torch/version.py (pip), build-version (the
 * pytorch.org zip), torch/version.h (headers), else the library's file name (Debian: .so.1.13).
 */
function versionOf(libdir) {
  const root = path.dirname(libdir);
  const py = read(path.join(root, 'version.py'));
  if (py) {
    const version = /__version__\s*=\s*'([^']+)'/.exec(py)?.[1];
    const cuda = /^cuda\s*[:=][^'\n]*'([^']+)'/m.exec(py)?.[1] ?? '';
    if (version) return { version: version.replace(/\+.*/, ''), cuda };
  }
  const build = read(path.join(root, 'build-version'));
  if (build) {
    const m = /^(\d+\.\d+\.\d+)(?:\+cu(\d+)(\d))?/.exec(build.trim());
    if (m) return { version: m[1], cuda: m[2] ? `${m[2]}.${m[3]}` : build.includes('+cpu') ? '' : null };
  }
  const headers = [root, ...(root.startsWith('/usr/lib') ? ['/usr'] : [])].map((r) =>
    path.join(r, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
  );
  let version = null;
  for (const h of headers.map(read).filter(Boolean)) {
    const part = (n) => new RegExp(`TORCH_VERSION_${n}\\s+(\\d+)`).exec(h)?.[1];
    if (part('MAJOR')) version = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH') ?? 0}`;
    if (version) break;
  }
  if (!version) {
    const lib = findLibrary(libdir, 'libtorch_cpu');
    version = lib ? (/\.so\.(\d+\.\d+(?:\.\d+)?)$/.exec(lib)?.[1] ?? null) : null;
  }
  return { version, cuda: null };
}

/**
 * What the loader and the prebuilds are keyed by: `torch-<major.minor>-<flavour>`, flavour `cpu` or
 * `cu<XY>` (12.1 -> cu121). A CUDA libtorch whose CUDA version cannot be read gets flavour `cuda`.
 */
function describeLibdir(libdir) {
  const { version, cuda: declared } = versionOf(libdir);
  const hasCuda = Boolean(findLibrary(libdir, 'libtorch_cuda'));
  let cuda = hasCuda ? declared || null : '';
  if (hasCuda && !cuda) {
    const cudart = fs.existsSync(libdir) ? fs.readdirSync(libdir).find((e) => /^libcudart.*\.so\.\d+/.test(e)) : undefined;
    cuda = cudart ? /\.so\.(\d+)/.exec(cudart)[1] : null;
  }
  const flavour = !hasCuda ? 'cpu' : cuda ? `cu${cuda.replace('.', '')}` : 'cuda';
  const majorMinor = version ? version.split('.').slice(0, 2).join('.') : 'unknown';
  return { libdir, version, cuda: hasCuda ? cuda : null, flavour, key: `torch-${majorMinor}-${flavour}` };
}

/** The shared libraries to load, dependencies first, before an addon that links them by name. */
function runtimeLibraries(libdir) {
  return ['libc10', 'libc10_cuda', 'libtorch_cpu', 'libtorch_cuda', 'libtorch']
    .map((name) => findLibrary(libdir, name))
    .filter(Boolean);
}

if (require.main === module) {
  const found = locate();
  const what = process.argv[2];
  if (what === 'include') console.log(found.include.join(' '));
  else if (what === 'libdirs') console.log(found.libdir);
  else if (what === 'json') console.log(JSON.stringify({ source: found.source, ...describeLibdir(found.libdir) }));
  else {
    const d = describeLibdir(found.libdir);
    console.log(`libtorch ${d.version ?? '(version unknown)'} (${d.flavour}) from ${found.source}: ${found.root} (libs in ${found.libdir})`);
  }
}

module.exports = { locate, describeLibdir, runtimeLibraries };
