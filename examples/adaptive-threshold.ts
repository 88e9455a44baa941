/**
 * The adaptive threshold: keeps the cache hit rate inside [0.3, 0.8] over a window by *lowering* the
 * threshold when too few calls hit and *raising* it when too many do (the rule is similarity >
 * threshold -> cache, so a lower threshold caches more; the seeds' prose states the opposite
 * direction). Here a strict start threshold on a steady scene is relaxed step by step.
 *
 *   npm run build:ts && node dist/examples/adaptive-threshold.js
 */
import { AdaptiveThreshold, data, PolicyServer, SmolVLAPolicy, training } from 'smolvla-node';

const { sceneCamera } = data;
const { byteTokenizer, tinyConfig } = training;

export async function main(steps = 40): Promise<number[]> {
  const policy = await SmolVLAPolicy.create(tinyConfig(), { seed: 0, tokenizer: byteTokenizer() });
  policy.clsThreshold = 0.8; // strict: almost nothing is cached at first
  const controller = new AdaptiveThreshold({ window: 8 });
  const server = new PolicyServer(policy, { adaptive: controller, reuseSteps: 0 });
  const camera = sceneCamera(64, 64, 0);
  const thresholds: number[] = [];
  for (let step = 0; step < steps; step++) {
    const r = await server.step({ 'observation.images.top': camera.frame(3, step), 'observation.state': new Float32Array(6), task: 'stack the blocks' });
    thresholds.push(r.threshold);
    if (r.adjustment) console.log(`step ${step}: hit rate out of band -> threshold ${r.threshold.toFixed(2)} -> ${policy.clsThreshold.toFixed(2)}`);
  }
  console.log(`final threshold ${policy.clsThreshold.toFixed(2)}, hit rate ${server.stats.summary().hitRate?.toFixed(2)}`);
  await server.dispose();
  return thresholds;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
