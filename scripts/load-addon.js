// Loads the native addon for the libtorch found on this machine (used by lib/native.ts, the install
// hook and scripts that need the raw addon). Plain CommonJS so it also runs before TypeScript is built.
//
// A binary only works with the libtorch it was built against, so: find libtorch the way the build
// does ($LIBTORCH, a Python torch install, the system), read its version and flavour, load its
// shared libraries from there, then the binary built for that version and flavour — the local build
// (build/Release) or a prebuild (prebuilds/<platform>-<arch>/torch-<major.minor>-<flavour>/).
// Binaries carry no RPATH: the dynamic linker matches the addon's libtorch dependencies by name to
// the libraries loaded here, so a prebuild never looks for the machine that built it.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { locate, describeLibdir, runtimeLibraries } = require('./libtorch');

const ADDON = 'smolvla_node.node';
// glibc's RTLD_NODELETE (not in os.constants.dlopen): keeps a library loaded after Node closes the
// handle of a library that is not an addon.
const RTLD_NODELETE = 0x1000;

const platformDir = (root) => path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** Every binary in the package with the libtorch key it was built for, local build first. */
function binaries(root) {
  const out = [];
  const local = path.join(root, 'build', 'Release', ADDON);
  if (fs.existsSync(local)) {
    const info = readJson(path.join(root, 'build', 'torch-info.json'));
    let key = null;
    if (info?.libdir && fs.existsSync(info.libdir)) key = describeLibdir(info.libdir).key;
    else if (info?.version) key = `torch-${info.version.split('.').slice(0, 2).join('.')}-${info.cuda ? 'cuda' : 'cpu'}`;
    out.push({ kind: 'local build', file: local, key });
  }
  const dir = platformDir(root);
  const keys = fs.existsSync(dir) ? fs.readdirSync(dir).filter((k) => fs.existsSync(path.join(dir, k, ADDON))) : [];
  for (const key of keys.sort()) out.push({ kind: 'prebuild', file: path.join(dir, key, ADDON), key });
  return out;
}

/** The libtorch this process would use, or the reason none was found. */
function findTorch() {
  try {
    const found = locate();
    return { ...describeLibdir(found.libdir), source: found.source };
  } catch (err) {
    return { error: err.message };
  }
}

/** The command that builds the addon from source where this package sits. */
function sourceBuildCommand(root) {
  const parent = path.dirname(root);
  const project = path.basename(parent) === 'node_modules' ? path.dirname(parent) : null;
  // A scoped install sits one level deeper (node_modules/@scope/name); this package is unscoped.
  return project
    ? `cd ${project} && npm rebuild smolvla-node --foreground-scripts`
    : `cd ${root} && npm run build:native`;
}

function failure(message, cause) {
  const err = new Error(message, cause ? { cause } : undefined);
  err.code = 'ERR_SMOLVLA_ADDON';
  return err;
}

/** The one message for "nothing loads here": what was found, what exists, how to build. */
function noMatchMessage(root, torch, found, detail) {
  const describe = torch.error
    ? `no libtorch: ${torch.error.split('\n')[0]}`
    : `libtorch ${torch.version ?? '(version unknown)'} (${torch.flavour}) from ${torch.source}, libraries in ${torch.libdir}; needs a binary for ${torch.key}`;
  const local = found.find((b) => b.kind === 'local build');
  const prebuilds = found.filter((b) => b.kind === 'prebuild').map((b) => b.key);
  return [
    `smolvla-node: ${detail ?? 'no native binary matches the libtorch on this machine'}.`,
    `  Found: ${describe}.`,
    `  Local build: ${local ? `${local.file} (for ${local.key ?? 'an unknown libtorch: build/torch-info.json missing'})` : 'none'}.`,
    `  Prebuilds for ${process.platform}-${process.arch}: ${prebuilds.length ? prebuilds.join(', ') : 'none'}.`,
    '  Build from source for this libtorch (needs cmake >= 3.18, a C++17 compiler and nlohmann-json3-dev):',
    `    ${sourceBuildCommand(root)}`,
    '  To use another libtorch, set LIBTORCH=/path/to/libtorch (searched in order: $LIBTORCH, a Python torch, the system).',
  ].join('\n');
}

/** Loads libtorch's shared libraries globally from libdir, before the addon that needs them. */
function preloadTorch(libdir) {
  const flags = os.constants.dlopen.RTLD_NOW | os.constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
  for (const lib of runtimeLibraries(libdir)) {
    try {
      process.dlopen({ exports: {} }, lib, flags);
    } catch (err) {
      // Node loaded the library, then found no addon in it: the expected outcome for libtorch.
      if (!/did not self-register/.test(err.message)) throw err;
    }
  }
}

const majorMinor = (v) => (v ?? '').split('.').slice(0, 2).join('.');

/**
 * Loads the addon matching the libtorch found; returns { addon, binary, torch } or throws one Error
 * with code ERR_SMOLVLA_ADDON that says what was found, which binaries exist and how to build.
 */
function loadAddon(root) {
  const torch = findTorch();
  const found = binaries(root);
  if (torch.error) throw failure(noMatchMessage(root, torch, found, 'libtorch was not found'));
  const binary = found.find((b) => b.key === torch.key);
  if (!binary) throw failure(noMatchMessage(root, torch, found));
  let addon;
  try {
    preloadTorch(torch.libdir);
    addon = require(binary.file);
  } catch (err) {
    throw failure(noMatchMessage(root, torch, found, `the ${binary.kind} ${binary.file} failed to load: ${err.message.split('\n')[0]}`), err);
  }
  // The binary's own record of the libtorch it was compiled with, and the library it actually uses.
  const info = addon.buildInfo();
  const loaded = info.torchLibrary ? fs.realpathSync(path.dirname(info.torchLibrary)) : null;
  if (majorMinor(info.torchVersion) !== majorMinor(torch.version) || (loaded && loaded !== fs.realpathSync(torch.libdir))) {
    throw failure(
      noMatchMessage(
        root,
        torch,
        found,
        `the ${binary.kind} ${binary.file} was compiled against libtorch ${info.torchVersion} but runs on ${torch.version} from ${loaded ?? '?'}`,
      ),
    );
  }
  return { addon, binary, torch };
}

module.exports = { loadAddon, binaries, findTorch, sourceBuildCommand, platformDir, ADDON };
