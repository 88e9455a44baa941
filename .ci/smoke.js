// Runs inside a fresh project that installed the packed tarball: the built-in tiny policy (random
// weights) predicts one action chunk through the public API, as a new user's first script would.
'use strict';
const { SmolVLAPolicy, buildInfo, training } = require('smolvla-node');

(async () => {
  const policy = await SmolVLAPolicy.create(training.tinyConfig(), { seed: 0, tokenizer: training.byteTokenizer() });
  const [width, height] = training.TINY_IMAGE_SIZE;
  const frame = { data: Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 37) % 256), width, height };
  const prediction = await policy.predictActionChunk({
    [training.TINY_CAMERA]: frame,
    'observation.state': new Float32Array(training.TINY_STATE_DIM).fill(0.1),
    task: 'pick up the cube',
  });
  const chunk = prediction.actions[0];
  if (!chunk || chunk.length !== policy.config.chunkSize * training.TINY_ACTION_DIM || !chunk.every(Number.isFinite)) {
    throw new Error(`unexpected chunk: ${chunk && chunk.length} values`);
  }
  const info = buildInfo();
  console.log(`smoke: chunk of ${policy.config.chunkSize} x ${training.TINY_ACTION_DIM} finite actions; libtorch ${info.torchVersion} (${info.torchSource})`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
