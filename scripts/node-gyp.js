// Runs npm's own node-gyp (the one npm runs install scripts with) against this Node's headers, so
// the gyp build needs no header download.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

function nodeGypScript(root) {
  if (process.env.npm_config_node_gyp && fs.existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  return require.resolve('node-gyp/bin/node-gyp.js', {
    paths: [root, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm')],
  });
}

/** `node-gyp rebuild` in cwd; returns the exit status (1 when node-gyp itself is missing). */
function nodeGypRebuild(root, cwd, stdio) {
  let script;
  try {
    script = nodeGypScript(root);
  } catch {
    console.error('node-gyp was not found (it ships with npm)');
    return 1;
  }
  // npm's nodedir, else this Node's install prefix when it carries the headers.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const nodedir = process.env.npm_config_nodedir || (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : '');
  const args = [script, 'rebuild', '-j', String(os.cpus().length), ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  return spawnSync(process.execPath, args, { cwd, stdio }).status ?? 1;
}

module.exports = { nodeGypRebuild };
