#!/usr/bin/env node
// Checks the node-gyp build path (binding.gyp) without touching the cmake-js build in build/:
// builds a copy of the sources in a temporary folder, loads the result and runs one operation.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-gyp-'));
for (const item of ['binding.gyp', 'package.json', 'native', 'scripts']) {
  fs.cpSync(path.join(root, item), path.join(work, item), { recursive: true });
}
fs.symlinkSync(path.join(root, 'node_modules'), path.join(work, 'node_modules'));
const gyp = require.resolve('node-gyp/bin/node-gyp.js', {
  paths: [root, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm')],
});
console.log(execFileSync(process.execPath, [path.join(root, 'scripts', 'libtorch.js'), 'describe'], { encoding: 'utf8' }).trim());
// Build against this Node's own headers (no download): npm's nodedir, else the install prefix.
const prefix = path.resolve(path.dirname(process.execPath), '..');
const nodedir = process.env.npm_config_nodedir || (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : '');
const args = [gyp, 'rebuild', '-j', String(os.cpus().length), ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const started = Date.now();
execFileSync(process.execPath, args, { cwd: work, stdio: 'inherit' });
const addon = require(path.join(work, 'build', 'Release', 'smolvla_node.node'));
const pad = addon.tensorFromBuffer(new Uint8Array([1, 1, 0]), [1, 3], 'bool');
const mask = addon.makeAtt2dMasks(pad, addon.tensorFromBuffer(new Uint8Array([0, 1, 1]), [1, 3], 'bool'));
if (mask.shape.join(',') !== '1,3,3') throw new Error(`node-gyp build: unexpected mask shape ${mask.shape}`);
console.log(`node-gyp build OK in ${((Date.now() - started) / 1000).toFixed(0)} s (${work}); libtorch ${addon.buildInfo().torchVersion}`);
fs.rmSync(work, { recursive: true, force: true });
