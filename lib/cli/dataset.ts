/**
 * `smolvla-node dataset`: writes the built-in synthetic recording as a local LeRobot dataset
 * (Parquet episodes + MP4 videos encoded with ffmpeg, v2.1 or v3.0 layout), so the trainer can be
 * run on a real dataset folder with nothing downloaded:
 *
 *   smolvla-node dataset --root /tmp/demo_ds && smolvla-node train --dataset.root=/tmp/demo_ds ...
 */
import { syntheticRecording, writeLeRobotDataset } from '../data';
import { flagValue, formatFlagHelp, parseFlags, type FlagSpec } from './flags';
import type { CliIO } from './progress';
import { SmolVLAError } from '../errors';

const FLAGS: readonly FlagSpec[] = [
  { name: 'root', type: 'string', help: 'folder to create (must not exist or be empty)' },
  { name: 'version', type: 'string', default: 'v3.0', help: "LeRobot layout: 'v3.0' or 'v2.1'" },
  { name: 'episodes', type: 'int', default: 8, help: 'episodes to record' },
  { name: 'episode_length', type: 'int', default: 40, help: 'frames per episode' },
  { name: 'seed', type: 'int', default: 0, help: 'scene and trajectories' },
];

export async function runDataset(argv: readonly string[], io: CliIO): Promise<number> {
  const parsed = parseFlags(argv, FLAGS);
  if (parsed.help) {
    io.stdout.write(`usage: smolvla-node dataset --root=<dir> [--flag=value ...]\n\n${formatFlagHelp([{ title: 'dataset flags', specs: FLAGS }])}`);
    return 0;
  }
  const flag = <T>(name: string): T => flagValue<T>(parsed.values, FLAGS, name);
  const root = flag<string | undefined>('root');
  if (!root) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', '--root: the folder to write the dataset to is required');
  const version = flag<string>('version');
  if (version !== 'v3.0' && version !== 'v2.1') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--version: expected 'v3.0' or 'v2.1', got '${version}'`);
  const recording = syntheticRecording({ episodes: flag<number>('episodes'), episodeLength: flag<number>('episode_length'), seed: flag<number>('seed') });
  await writeLeRobotDataset(root, { version, ...recording });
  const frames = recording.episodes.reduce((n, e) => n + e.frames.length, 0);
  io.stdout.write(`wrote a LeRobot ${version} dataset to ${root}: ${recording.episodes.length} episodes, ${frames} frames, cameras ${recording.cameraKeys.join(', ')}\n`);
  return 0;
}
