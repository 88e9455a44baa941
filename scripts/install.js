#!/usr/bin/env node
// npm install hook. 1) A binary that matches the libtorch found here (the local build or a prebuild,
// see scripts/load-addon.js) loads: done, no compiler needed. 2) Otherwise build from source with
// cmake-js, then with node-gyp if cmake-js fails. 3) Nothing works: one message saying what was found,
// which binaries exist and what a source build needs; the install fails.
// SMOLVLA_BUILD_FROM_SOURCE=1 (or npm's --build-from-source) skips step 1.
'use strict';
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { loadAddon } = require('./load-addon');
const { cmakeJsBuild, gypBuild } = require('./install-steps');

const root = path.resolve(__dirname, '..');
const forced = process.env.SMOLVLA_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';

function tryLoad() {
  try {
    const { binary, torch } = loadAddon(root);
    return { ok: `smolvla-node: using the ${binary.kind} for ${torch.key} (libtorch from ${torch.source})` };
  } catch (err) {
    return { error: err.message };
  }
}

if (process.argv[2] === '--check') {
  const r = tryLoad();
  console.log(r.ok ?? r.error);
  process.exit(r.ok ? 0 : 1);
}
if (!forced) {
  const first = tryLoad();
  if (first.ok) {
    console.log(first.ok);
    process.exit(0);
  }
  console.log(first.error.split('\n').slice(0, 4).join('\n'));
}
const started = Date.now();
console.log('smolvla-node: building the native addon from source with cmake-js (minutes; --foreground-scripts shows progress)...');
let built = cmakeJsBuild(root, 'inherit');
if (!built) {
  console.log('smolvla-node: the cmake-js build failed; trying node-gyp (binding.gyp)...');
  built = gypBuild(root, 'inherit');
}
// Loaded in a child: this process may already hold a libtorch from the first attempt.
const check = built ? spawnSync(process.execPath, [__filename, '--check'], { encoding: 'utf8' }) : null;
if (check?.status === 0) {
  console.log(`smolvla-node: built from source in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  process.exit(0);
}
console.error(check ? check.stdout : tryLoad().error ?? 'smolvla-node: the source build failed');
console.error('smolvla-node: see README "Install from npm" for what each install path needs.');
process.exit(1);
