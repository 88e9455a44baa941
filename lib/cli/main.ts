#!/usr/bin/env node
/**
 * `npx smolvla-node <command>`: demo (the main job: a robot control loop on a built-in model),
 * train (lerobot-train compatible), serve (openpi WebSocket protocol), info (what the addon was built with).
 */
import { buildInfo } from '../runtime';
import { runDataset } from './dataset';
import { runDemo } from './demo';
import { runServe } from './serve';
import { runTrain } from './train';
import type { CliIO } from './progress';

const USAGE = `usage: smolvla-node <command> [flags]

commands:
  demo    run a robot control loop with a built-in small model and a synthetic camera scene;
          prints similarity and cache decisions and writes an HTML report (demo --help)
  train   train the delta expert, lerobot-train style flags (train --help)
  dataset write the built-in synthetic recording as a local LeRobot dataset (dataset --help)
  serve   serve a policy over the network in openpi's WebSocket protocol (serve --help)
  info    show the libtorch the native addon was built with and loads
`;

export async function main(argv: readonly string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo':
      return runDemo(rest, io);
    case 'train':
      return runTrain(rest, io);
    case 'dataset':
      return runDataset(rest, io);
    case 'serve':
      return runServe(rest, io);
    case 'info':
      io.stdout.write(`${JSON.stringify(buildInfo(), null, 2)}\n`);
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      io.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      io.stderr.write(`smolvla-node: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`smolvla-node: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
