/**
 * A robot control loop in Node: the policy picks one action per control tick from its action queue
 * (a new chunk is predicted when the queue runs dry), the "robot" integrates it, and the episode
 * starts with reset(). Uses the built-in tiny model; pass a LeRobot checkpoint folder to use yours.
 *
 *   npm run build:ts && node dist/examples/control-loop.js [checkpoint_dir]
 */
import { data, SmolVLAPolicy, training, type RobotObservation } from 'smolvla-node';

const { sceneCamera } = data;
const { byteTokenizer, tinyConfig } = training;

export async function main(checkpoint?: string, ticks = 25): Promise<number[][]> {
  const policy = checkpoint
    ? await SmolVLAPolicy.fromPretrained(checkpoint)
    : await SmolVLAPolicy.create(tinyConfig(), { seed: 0, tokenizer: byteTokenizer() });
  const camera = sceneCamera(64, 64, 1);
  const state = new Float32Array(6);
  const executed: number[][] = [];
  policy.reset(); // every episode starts with an empty queue and no previous CLS output
  for (let tick = 0; tick < ticks; tick++) {
    const observation: RobotObservation = {
      'observation.images.top': camera.frame(0, tick),
      'observation.state': state,
      task: 'push the red block to the left',
    };
    const [action] = await policy.selectAction(observation);
    for (let i = 0; i < state.length; i++) state[i] = 0.9 * state[i]! + 0.1 * action![i]!;
    executed.push(Array.from(action!));
    console.log(`tick ${String(tick).padStart(2)}: action[0..2] = ${Array.from(action!.slice(0, 3), (v) => v.toFixed(3)).join(', ')}`);
  }
  return executed;
}

if (require.main === module) {
  main(process.argv[2]).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
