#!/usr/bin/env node
// npm pack hook: copies the freshly built addon into
// prebuilds/<platform>-<arch>/torch-<major.minor>-<flavour>/ (flavour cpu or cuXY), so binaries for
// different libtorch versions and flavours sit side by side; scripts/load-addon.js picks the one
// matching the user's libtorch. Prebuilds are packaged, never committed.
// Usage: node scripts/prebuild.js [--out <dir>]   (default: the package's prebuilds/)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { describeLibdir } = require('./libtorch');

const root = path.resolve(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'smolvla_node.node');
const infoFile = path.join(root, 'build', 'torch-info.json');
if (!fs.existsSync(built) || !fs.existsSync(infoFile)) {
  console.error('prebuild: build/Release/smolvla_node.node or build/torch-info.json is missing; run npm run build:native first');
  process.exit(1);
}
const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
const torch = describeLibdir(info.libdir);
if (torch.version === null || torch.flavour === 'cuda') {
  console.error(`prebuild: cannot tell the version or CUDA version of the libtorch in ${info.libdir}; not writing a prebuild`);
  process.exit(1);
}
const outFlag = process.argv.indexOf('--out');
const base = outFlag > 0 ? path.resolve(process.argv[outFlag + 1]) : path.join(root, 'prebuilds');
const dir = path.join(base, `${process.platform}-${process.arch}`, torch.key);
fs.mkdirSync(dir, { recursive: true });
fs.copyFileSync(built, path.join(dir, 'smolvla_node.node'));
// Where it was built is kept for the record only; loading never uses these paths.
fs.writeFileSync(
  path.join(dir, 'torch-info.json'),
  `${JSON.stringify({ version: torch.version, cuda: torch.cuda, flavour: torch.flavour, builtWith: info.source, builtAt: new Date().toISOString() }, null, 2)}\n`,
);
console.log(`prebuild: ${dir} (libtorch ${torch.version}, ${torch.flavour})`);
