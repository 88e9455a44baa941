#!/usr/bin/env node
// Checks the node-gyp build path (binding.gyp) without touching the cmake-js build in build/:
// builds a copy of the sources in a temporary folder, loads the result and runs one operation.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { nodeGypRebuild } = require('./node-gyp');
const { writeTorchInfo } = require('./install-steps');

const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-gyp-'));
for (const item of ['binding.gyp', 'package.json', 'native', 'scripts']) {
  fs.cpSync(path.join(root, item), path.join(work, item), { recursive: true });
}
fs.symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'));
console.log(execFileSync(process.execPath, [path.join(root, 'scripts', 'libtorch.js'), 'describe'], { encoding: 'utf8' }).trim());
const started = Date.now();
if (nodeGypRebuild(root, work, 'inherit') !== 0) process.exit(1);
writeTorchInfo(work, 'node-gyp');
// Loaded the way users load it: libtorch first, then the binary matching it (no RPATH in either build).
const { addon, binary } = require(path.join(work, 'scripts', 'load-addon.js')).loadAddon(work);
const pad = addon.tensorFromBuffer(new Uint8Array([1, 1, 0]), [1, 3], 'bool');
const mask = addon.makeAtt2dMasks(pad, addon.tensorFromBuffer(new Uint8Array([0, 1, 1]), [1, 3], 'bool'));
if (mask.shape.join(',') !== '1,3,3') throw new Error(`node-gyp build: unexpected mask shape ${mask.shape}`);
console.log(`node-gyp build OK in ${((Date.now() - started) / 1000).toFixed(0)} s (${binary.file}); libtorch ${addon.buildInfo().torchVersion}`);
fs.rmSync(work, { recursive: true, force: true });
