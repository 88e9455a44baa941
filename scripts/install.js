#!/usr/bin/env node
// npm install hook: use a prebuilt or already-built binary when one loads against the libtorch
// present; otherwise build from source with cmake-js (see README, "Building from source").
'use strict';
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
try {
  const addon = require('node-gyp-build')(root);
  console.log(`smolvla-node: using an existing native binary (libtorch ${addon.buildInfo().torchVersion})`);
  process.exit(0);
} catch {
  // nothing usable: build below
}
console.log('smolvla-node: building the native addon from source (cmake-js, a few minutes)...');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--CDCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
