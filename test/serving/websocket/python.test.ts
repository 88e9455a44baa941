/**
 * `smolvla-node serve` answers a Python client written from the documented wire format with
 * Debian's python3-msgpack, python3-numpy and python3-websockets (as openpi's clients speak it).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';

import { runServe } from '../../../lib/cli/serve';

const CLIENT = path.join(__dirname, 'openpi_client.py');

function python(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Record<string, unknown>) : reject(new Error(`python exited ${code}: ${err}`))));
  });
}

/** Starts `serve` in this process; resolves with its port and a stop function. */
async function serve(flags: string[]): Promise<{ port: number; stop: () => Promise<string> }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let printed = '';
  let logged = '';
  stderr.on('data', (d: Buffer) => (logged += d.toString()));
  const port = new Promise<number>((resolve) =>
    stdout.on('data', (d: Buffer) => {
      printed += d.toString();
      const m = /on ws:\/\/[^:]+:(\d+)/.exec(printed);
      if (m) resolve(Number(m[1]));
    }),
  );
  const abort = new AbortController();
  const done = runServe(['--policy.builtin=tiny', '--port=0', ...flags], { stdout, stderr }, abort.signal);
  return {
    port: await Promise.race([port, done.then(() => Promise.reject(new Error(`serve ended: ${logged}`)))]),
    stop: async () => {
      abort.abort();
      expect(await done).toBe(0);
      return logged;
    },
  };
}

describe('serve with an openpi-style Python client', () => {
  it('answers observations with actions of shape (chunk_size, action_dim)', async () => {
    const { port, stop } = await serve([]);
    try {
      const report = await python([String(port), '--requests', '4']);
      expect(report.chunk_size).toBe(10);
      expect(report.action_dim).toBe(6);
      expect(report.metadata_keys).toEqual(expect.arrayContaining(['action_dim', 'cameras', 'chunk_size', 'input_features', 'policy_type']));
      const replies = report.replies as Array<{ shape: number[]; dtype: string; finite: boolean; timing: string[] }>;
      expect(replies).toHaveLength(4);
      for (const r of replies) expect([r.shape, r.dtype, r.finite]).toEqual([[10, 6], 'float32', true]);
      expect(replies[1]!.timing).toEqual(['infer_ms', 'prev_total_ms']);
      const bad = await python([String(port), '--bad']);
      expect(bad).toMatchObject({ error_is_text: true, close_code: 1011 });
      expect(bad.error).toMatch(/observation\/state: expected a float array/);
    } finally {
      const log = await stop();
      // The log names connections and error codes; observation contents never appear.
      expect(log).toMatch(/connection 2: ERR_SMOLVLA_PROTOCOL/);
      expect(log).not.toMatch(/not an array|stack the blocks/);
    }
  });

  it('needs the API key when bound beyond loopback (the client connects over loopback)', async () => {
    const key = 'py-test-key-0123456789';
    const { port, stop } = await serve(['--host=0.0.0.0', `--api_key=${key}`]);
    try {
      expect(await python([String(port)])).toEqual({ refused_status: 401 });
      const ok = await python([String(port), '--api-key', key, '--requests', '1']);
      expect((ok.replies as Array<{ shape: number[] }>)[0]!.shape).toEqual([10, 6]);
    } finally {
      await stop();
    }
  });
});
