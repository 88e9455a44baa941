/**
 * `smolvla-node train --num_processes=N` on one machine: runs the same command again in N worker
 * processes (this process's node arguments and script) with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
 * MASTER_PORT), passes rank 0's output through and the others' errors with a `[rank r]` prefix.
 * When a worker fails, the others stop on their own (their next collective fails) and are killed
 * if they have not exited within the grace period; the launcher exits with the first failure's code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';

import type { CliIO } from './progress';

export interface LaunchOptions {
  numProcesses: number;
  io: CliIO;
  /** How long the other workers get to stop on their own after one failed. */
  graceMs: number;
  /** Extra environment for the workers (threads). */
  env?: NodeJS.ProcessEnv;
}

/** A free TCP port on the loopback interface for the rendezvous (MASTER_PORT unless the user set one). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Forwards a stream line by line, each line prefixed. */
function forwardLines(from: NodeJS.ReadableStream, to: NodeJS.WritableStream, prefix: string): void {
  let pending = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) to.write(`${prefix}${line}\n`);
  });
  from.on('end', () => {
    if (pending !== '') to.write(`${prefix}${pending}\n`);
  });
}

/** Runs the workers to completion; resolves to the exit code of the run. */
export async function launchWorkers(o: LaunchOptions): Promise<number> {
  const port = process.env.MASTER_PORT ? Number(process.env.MASTER_PORT) : await freePort();
  const addr = process.env.MASTER_ADDR || '127.0.0.1';
  // The workers see WORLD_SIZE, so the same command line makes them workers, not launchers.
  const command = [...process.execArgv, ...process.argv.slice(1)];
  o.io.stdout.write(`starting ${o.numProcesses} workers (rendezvous at ${addr}:${port})\n`);
  const children: ChildProcess[] = [];
  const exits: Array<Promise<{ rank: number; code: number; signal: NodeJS.Signals | null }>> = [];
  for (let rank = 0; rank < o.numProcesses; rank++) {
    const child = spawn(process.execPath, command, {
      env: {
        ...process.env,
        ...o.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(o.numProcesses),
        LOCAL_WORLD_SIZE: String(o.numProcesses),
        MASTER_ADDR: addr,
        MASTER_PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (rank === 0) child.stdout?.pipe(o.io.stdout, { end: false });
    else child.stdout?.resume();
    forwardLines(child.stderr!, o.io.stderr, rank === 0 ? '' : `[rank ${rank}] `);
    children.push(child);
    exits.push(
      new Promise((resolve) => {
        child.once('error', (e) => {
          o.io.stderr.write(`smolvla-node train: could not start worker ${rank}: ${e.message}\n`);
          resolve({ rank, code: 1, signal: null });
        });
        child.once('close', (code, signal) => resolve({ rank, code: code ?? 1, signal }));
      }),
    );
  }

  // Ctrl-C reaches every worker directly (same process group): they agree on a step, save and exit.
  // The launcher stays to collect them; a second Ctrl-C kills them.
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts > 1) for (const c of children) c.kill('SIGKILL');
  };
  process.on('SIGINT', onSigint);

  let firstFailure: { rank: number; code: number; signal: NodeJS.Signals | null } | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  try {
    const results = await Promise.all(
      exits.map((p) =>
        p.then((r) => {
          const failed = r.code !== 0 && r.code !== 130;
          if (failed && !firstFailure) {
            firstFailure = r;
            const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
            o.io.stderr.write(`smolvla-node train: worker rank ${r.rank} ${how}; the other workers stop within ${Math.round(o.graceMs / 1000)} s\n`);
            killTimer = setTimeout(() => {
              for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
            }, o.graceMs);
          }
          return r;
        }),
      ),
    );
    if (firstFailure) return (firstFailure as { code: number }).code || 1;
    return results.every((r) => r.code === 130) ? 130 : results.some((r) => r.code === 130) ? 1 : 0;
  } finally {
    if (killTimer) clearTimeout(killTimer);
    process.removeListener('SIGINT', onSigint);
  }
}
