#!/usr/bin/env node
// Lists native/**/*.cc for binding.gyp (gyp has no globbing); paths relative to the package root.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const walk = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.cc') ? [path.relative(root, p)] : [];
  });
console.log(walk(path.join(root, 'native')).sort().join(' '));
