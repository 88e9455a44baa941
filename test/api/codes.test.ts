/**
 * Every error the package throws carries a `code`: a source scan finds no plain Error/RangeError/
 * TypeError thrown in lib/, and representative failures from each area arrive with their codes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { defaultConfig, PolicyServer, readConfig, SmolVLAModel, Tensor } from '../../lib/index';
import { native } from '../../lib/native';
import { nativeConfigJson } from '../../lib/model/model';
import { FakePolicy } from '../serving/fakePolicy';

const libDir = path.join(__dirname, '..', '..', 'lib');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('error codes', () => {
  it('lib/ creates no Error without a code', () => {
    const offenders = sources(libDir).flatMap((file) =>
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${path.relative(libDir, file)}:${i + 1}` }))
        .filter(({ line }) => /new (Error|RangeError|TypeError)\(/.test(line))
        .map(({ at }) => at),
    );
    expect(offenders).toEqual([]);
  });

  it('tags JS-side argument, config, IO and state errors', async () => {
    expect(() => Tensor.from(new Float32Array(3), [2, 2])).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
    expect(() => defaultConfig({ chunkSize: -1 })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_CONFIG' }));
    await expect(readConfig(path.join(os.tmpdir(), 'smolvla-no-such-dir'))).rejects.toHaveProperty('code');
    await expect(SmolVLAModel.fromPretrained(path.join(os.tmpdir(), 'smolvla-no-such-dir'))).rejects.toEqual(
      expect.objectContaining({ code: 'ERR_SMOLVLA_IO' }),
    );
    expect(() => new PolicyServer(new FakePolicy(), { reuseSteps: -1 })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
  });

  it('checks every element of the config handed to C++ (names the key)', () => {
    const json = JSON.parse(nativeConfigJson(defaultConfig())) as { tokens: { imageStartTokens: unknown[] }; config: Record<string, unknown> };
    json.tokens.imageStartTokens = [1, 'two'];
    expect(() => native.createModel({ config: JSON.stringify(json) })).toThrow(
      expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT', message: expect.stringContaining('config.tokens.imageStartTokens[1]') }),
    );
    const missing = JSON.parse(nativeConfigJson(defaultConfig())) as { config: Record<string, unknown> };
    delete missing.config.chunk_size;
    expect(() => native.createModel({ config: JSON.stringify(missing) })).toThrow(/config\.config\.chunk_size/);
    expect(() => native.createModel({ config: '{not json' })).toThrow(expect.objectContaining({ code: 'ERR_SMOLVLA_ARGUMENT' }));
  });

  it('reads a DataView as its own bytes', () => {
    const buf = new ArrayBuffer(16);
    new Float32Array(buf).set([9, 1, 2, 9]);
    const t = new Tensor(native.tensorFromBuffer(new DataView(buf, 4, 8), [2], 'float32'));
    expect([...t.toFloat32()]).toEqual([1, 2]);
  });
});
