#!/usr/bin/env node
// npm pack hook: copies the freshly built addon into prebuilds/<platform>-<arch>/ (what
// node-gyp-build loads when no local build exists), with the libtorch it was built against beside
// it. Prebuilds are packaged, never committed: the repository always builds from source.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'smolvla_node.node');
if (!fs.existsSync(built)) {
  console.error('prebuild: build/Release/smolvla_node.node is missing; run npm run build:native first');
  process.exit(1);
}
const info = JSON.parse(fs.readFileSync(path.join(root, 'build', 'torch-info.json'), 'utf8'));
const flavour = info.cuda ? 'cuda' : 'cpu';
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
fs.mkdirSync(dir, { recursive: true });
fs.copyFileSync(built, path.join(dir, 'smolvla-node.napi.node'));
fs.writeFileSync(path.join(dir, 'torch-info.json'), JSON.stringify({ ...info, flavour }, null, 2));
console.log(`prebuild: ${dir} (libtorch ${info.version}, ${flavour})`);
