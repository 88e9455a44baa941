/** Shared pieces of the training tests: temp folders, captured CLI output, a CLI child process, tiny runs. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';

import type { Dataset } from '../../lib/data';
import { SmolVLAModel } from '../../lib/model';
import type { CliIO } from '../../lib/cli/train';
import type { Normalizer } from '../../lib/policy/normalize';
import type { VlmTokenizer } from '../../lib/policy/tokenizer';
import { datasetBatcher, type ToBatch } from '../../lib/train/batcher';
import { byteTokenizer } from '../../lib/train/byteTokenizer';
import { tinyConfig } from '../../lib/train/presets';
import { syntheticFor } from '../../lib/train/setup';

const created: string[] = [];

/** A fresh folder, removed after the test file's tests. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `smolvla-train-${prefix}-`));
  created.push(dir);
  return dir;
}

afterAll(() => {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A CliIO whose output is collected; stdout is a TTY only when asked (progress bar vs plain lines). */
export function captureIO(tty = false): { io: CliIO; out: () => string; err: () => string } {
  const chunks = { out: [] as string[], err: [] as string[] };
  const sink = (into: string[]) =>
    new Writable({
      write(chunk: Buffer | string, _enc, done) {
        into.push(chunk.toString());
        done();
      },
    });
  const stdout = Object.assign(sink(chunks.out), { isTTY: tty });
  return { io: { stdout, stderr: sink(chunks.err) }, out: () => chunks.out.join(''), err: () => chunks.err.join('') };
}

export interface Tiny {
  model: SmolVLAModel;
  dataset: Dataset;
  toBatch: ToBatch;
  normalizer: Normalizer;
  tokenizer: VlmTokenizer;
}

/** The built-in tiny model and the synthetic dataset, as the CLI builds them by default. */
export async function tinySetup(seed = 1): Promise<Tiny> {
  const config = tinyConfig();
  const model = await SmolVLAModel.create(config, { seed });
  const dataset = syntheticFor(config);
  const tokenizer = byteTokenizer();
  return { model, dataset, tokenizer, ...datasetBatcher(config, dataset, tokenizer) };
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * `smolvla-node train <args>` in a child process: the TypeScript sources are transpiled on load (no
 * type check; cached on disk by content, so only the first child pays for it), so the child runs
 * exactly the code under test. `onStdout` sees the output as it comes.
 */
export function runCliChild(
  args: string[],
  env: Record<string, string> = {},
  onStdout?: (text: string, child: ChildProcess) => void,
  onSpawn?: (child: ChildProcess) => void,
): Promise<ChildResult> {
  const script = `
    const ts = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'typescript'))});
    const fs = require('fs');
    const path = require('path');
    const crypto = require('crypto');
    const cache = ${JSON.stringify(path.join(os.tmpdir(), 'smolvla-node-train-tests-ts'))};
    fs.mkdirSync(cache, { recursive: true });
    require.extensions['.ts'] = (m, file) => {
      const source = fs.readFileSync(file, 'utf8');
      const key = path.join(cache, crypto.createHash('sha1').update(ts.version + file + source).digest('hex') + '.js');
      let js;
      try {
        js = fs.readFileSync(key, 'utf8');
      } catch {
        js = ts.transpileModule(source, {
          fileName: file,
          compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
        }).outputText;
        const tmp = key + '.' + process.pid;
        fs.writeFileSync(tmp, js);
        fs.renameSync(tmp, key);
      }
      m._compile(js, file);
    };
    const { runTrain } = require(${JSON.stringify(path.join(ROOT, 'lib', 'cli', 'train.ts'))});
    runTrain(JSON.parse(process.env.TRAIN_ARGS), { stdout: process.stdout, stderr: process.stderr }).then((c) => { process.exitCode = c; });
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, ...env, TRAIN_ARGS: JSON.stringify(args) }, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The `kind: "train"` lines of a metrics.jsonl, by step. */
export function trainRecords(file: string): Map<number, Record<string, number>> {
  const out = new Map<number, Record<string, number>>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as Record<string, number> & { kind: string; step: number };
    if (r.kind === 'train') out.set(r.step, r);
  }
  return out;
}
