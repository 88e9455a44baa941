/**
 * The package as users load it: `require('smolvla-node')` and `import('smolvla-node')` from another
 * project resolve through the exports map (after `npm run build:ts`, which this test runs), give the
 * same objects, hide internal files, and leave process.env alone.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { packageRoot } from '../../lib/native';

let project: string;

function run(file: string, source: string): { stdout: string; stderr: string; status: number | null } {
  const p = path.join(project, file);
  fs.writeFileSync(p, source);
  const env = { ...process.env };
  delete env.OPENBLAS_THREAD_TIMEOUT;
  const r = spawnSync(process.execPath, [p], { cwd: project, encoding: 'utf8', env });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

beforeAll(() => {
  const tsc = require.resolve('typescript/bin/tsc');
  const build = spawnSync(process.execPath, [tsc, '-p', path.join(packageRoot, 'tsconfig.json')], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`tsc failed:\n${build.stdout}${build.stderr}`);
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-consumer-'));
  fs.mkdirSync(path.join(project, 'node_modules'));
  fs.symlinkSync(packageRoot, path.join(project, 'node_modules', 'smolvla-node'), 'dir');
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
}, 300_000);

afterAll(() => {
  if (project) fs.rmSync(project, { recursive: true, force: true });
});

describe("the package's exports map", () => {
  it('require() gives the public API, without touching process.env', () => {
    const r = run(
      'cjs.js',
      `const s = require('smolvla-node');
       console.log(JSON.stringify({
         policy: typeof s.SmolVLAPolicy, model: typeof s.SmolVLAModel, tensor: typeof s.Tensor,
         scene: typeof s.data.sceneCamera, tiny: typeof s.training.tinyConfig, error: typeof s.SmolVLAError,
         blas: process.env.OPENBLAS_THREAD_TIMEOUT ?? null,
       }));`,
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      policy: 'function', model: 'function', tensor: 'function', scene: 'function', tiny: 'function', error: 'function', blas: null,
    });
  });

  it('import() gives the same objects as require()', () => {
    const r = run(
      'esm.mjs',
      `import { createRequire } from 'node:module';
       import { SmolVLAPolicy, Tensor } from 'smolvla-node';
       const cjs = createRequire(import.meta.url)('smolvla-node');
       console.log(SmolVLAPolicy === cjs.SmolVLAPolicy && Tensor === cjs.Tensor);`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('true');
  });

  it('hides internal files', () => {
    const r = run(
      'deep.js',
      `try { require('smolvla-node/dist/lib/native.js'); console.log('loaded'); } catch (e) { console.log(e.code); }`,
    );
    expect(r.stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
