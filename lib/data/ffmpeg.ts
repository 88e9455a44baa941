/** The Debian `ffmpeg` binary as a child process: decodes and encodes dataset videos and images. */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { SmolVLAError } from '../errors';

const missing = (tool: string): string =>
  `${tool} was not found on PATH; LeRobot videos and images are decoded with ffmpeg: install it (Debian/Ubuntu: apt-get install ffmpeg)`;

/** At most one ffmpeg per core: a batch of samples from many episodes would otherwise fork dozens. */
const maxRunning = Math.max(1, os.availableParallelism());
let running = 0;
const waiting: Array<() => void> = [];

async function acquire(): Promise<void> {
  if (running < maxRunning) {
    running++;
    return;
  }
  await new Promise<void>((resolve) => waiting.push(resolve));
}

function release(): void {
  const next = waiting.shift();
  if (next) next();
  else running--;
}

export interface FfmpegResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs `ffmpeg args` (or `ffprobe args`), feeding `input` on stdin; resolves with everything it
 * wrote. `what` names the job in errors.
 */
export async function runFfmpeg(args: string[], what: string, input?: Uint8Array, tool: 'ffmpeg' | 'ffprobe' = 'ffmpeg'): Promise<FfmpegResult> {
  await acquire();
  try {
    return await new Promise<FfmpegResult>((resolve, reject) => {
      // -nostdin keeps ffmpeg from reading the terminal when nothing is piped in.
      const noStdin = input || tool === 'ffprobe' ? [] : ['-nostdin'];
      const child = spawn(tool, ['-hide_banner', ...noStdin, ...args], {
        stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        // Explicit, so a caller's change to process.env.PATH is honoured even inside a test sandbox.
        env: process.env,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
      child.on('error', (e: NodeJS.ErrnoException) => {
        reject(new SmolVLAError('ERR_SMOLVLA_IO', e.code === 'ENOENT' ? missing(tool) : `${tool} (${what}) could not start: ${e.message}`));
      });
      child.on('close', (code, signal) => {
        const stderr = Buffer.concat(err).toString('utf8');
        if (code === 0) {
          resolve({ stdout: Buffer.concat(out), stderr });
          return;
        }
        const tail = stderr.split('\n').filter((l) => l.trim() && !l.includes('Parsed_showinfo')).slice(-6).join('\n');
        reject(new SmolVLAError('ERR_SMOLVLA_IO', `${tool} failed (${what}): exit ${code ?? signal}\n${tail}`));
      });
      if (input && child.stdin) {
        // ffmpeg may exit before reading everything (bad data): that surfaces through 'close'.
        child.stdin.on('error', () => undefined);
        child.stdin.end(input);
      }
    });
  } finally {
    release();
  }
}

let encoders: Promise<string> | undefined;

/** Whether this ffmpeg build has the named encoder (asked once). */
export async function hasEncoder(name: string): Promise<boolean> {
  encoders ??= runFfmpeg(['-encoders'], 'list encoders').then((r) => r.stdout.toString('utf8'));
  try {
    return new RegExp(`^\\s*V\\S*\\s+${name}\\s`, 'm').test(await encoders);
  } catch (err) {
    encoders = undefined;
    throw err;
  }
}
