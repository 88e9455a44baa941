// The source builds the install hook tries, in order: cmake-js (CMakeLists.txt), then node-gyp
// (binding.gyp). Both leave build/Release/smolvla_node.node and build/torch-info.json.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { locate, describeLibdir } = require('./libtorch');
const { nodeGypRebuild } = require('./node-gyp');

/** What CMakeLists.txt records for a cmake-js build, written for a node-gyp build. */
function writeTorchInfo(root, how) {
  const found = locate();
  const torch = describeLibdir(found.libdir);
  const info = { source: `${found.source} (${how})`, version: torch.version, libdir: found.libdir, cuda: torch.cuda !== null };
  fs.writeFileSync(path.join(root, 'build', 'torch-info.json'), `${JSON.stringify(info)}\n`);
}

function cmakeJsBuild(root, stdio) {
  let cli;
  try {
    cli = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  } catch {
    console.error('cmake-js is not installed next to smolvla-node');
    return false;
  }
  return spawnSync(process.execPath, [cli, 'compile', '--CDCMAKE_BUILD_TYPE=Release'], { cwd: root, stdio }).status === 0;
}

function gypBuild(root, stdio) {
  if (nodeGypRebuild(root, root, stdio) !== 0) return false;
  writeTorchInfo(root, 'node-gyp');
  return true;
}

module.exports = { writeTorchInfo, cmakeJsBuild, gypBuild };
