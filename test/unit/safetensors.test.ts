/** safetensors: round trips of every dtype SmolVLA checkpoints use, atomic writes, clear errors. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { readSafetensors, Tensor, writeSafetensors } from '../../lib/index';

describe('safetensors', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smolvla-st-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips F32, F16, BF16, I64, BOOL and metadata', async () => {
    const file = path.join(dir, 'all.safetensors');
    const f32 = Tensor.fromNumbers([1, 2, 3, 4, 5, 6], [2, 3]);
    const tensors = {
      f32,
      f16: f32.to('float16'),
      bf16: f32.to('bfloat16'),
      i64: Tensor.fromInts([1, -2, 3], [3]),
      bool: Tensor.fromBools([1, 0], [2, 1]),
      scalar: Tensor.fromNumbers([7], []),
    };
    await writeSafetensors(file, tensors, { format: 'pt', note: 'héllo' });
    const back = await readSafetensors(file);
    expect(back.metadata).toEqual({ format: 'pt', note: 'héllo' });
    expect([...back.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const b = back.tensors.get(name)!;
      expect(b.dtype).toBe(t.dtype);
      expect(b.shape).toEqual(t.shape);
      expect(b.toNumbers()).toEqual(t.toNumbers());
    }
    // The header is 8-byte aligned so the data can be mapped in place.
    const header = fs.readFileSync(file).readBigUInt64LE(0);
    expect(Number(header) % 8).toBe(0);
  });

  it('reads files written by the Python reference', async () => {
    const f = await readSafetensors(path.join(__dirname, '..', 'fixtures', 'ops', 'masks.safetensors'));
    expect(f.metadata.kind).toBe('parity');
    expect(f.tensors.get('case0.pad')!.dtype).toBe('bool');
  });

  it('leaves no temporary file and replaces the old file atomically', async () => {
    const file = path.join(dir, 'atomic.safetensors');
    await writeSafetensors(file, { a: Tensor.fromNumbers([1], [1]) });
    await writeSafetensors(file, { a: Tensor.fromNumbers([2], [1]) });
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect((await readSafetensors(file)).tensors.get('a')!.toNumbers()).toEqual([2]);
  });

  it('rejects a truncated file', async () => {
    const good = path.join(dir, 'good.safetensors');
    await writeSafetensors(good, { a: Tensor.fromNumbers([1, 2, 3, 4], [4]) });
    const bytes = fs.readFileSync(good);
    const cut = path.join(dir, 'cut.safetensors');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 4));
    await expect(readSafetensors(cut)).rejects.toThrow(/the tensors cover 16 bytes of a 12-byte data section/);
    fs.writeFileSync(cut, bytes.subarray(0, 5));
    await expect(readSafetensors(cut)).rejects.toThrow(/truncated/);
  });

  it('rejects a corrupt header, bad offsets and unknown dtypes', async () => {
    const write = (name: string, header: string, data = Buffer.alloc(0)) => {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      const file = path.join(dir, name);
      fs.writeFileSync(file, Buffer.concat([len, Buffer.from(header), data]));
      return file;
    };
    await expect(readSafetensors(write('json.st', '{"a": {'))).rejects.toThrow(/corrupt header: it must be a JSON object padded with spaces only/);
    await expect(
      readSafetensors(write('offs.st', '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', Buffer.alloc(8))),
    ).rejects.toThrow(/data_offsets \[0, 4\) hold 4 bytes, its shape and F32 need 8/);
    await expect(
      readSafetensors(write('dtype.st', '{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}', Buffer.alloc(8))),
    ).rejects.toThrow(/unsupported dtype 'C64'/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(1000n);
    fs.writeFileSync(path.join(dir, 'huge.st'), huge);
    await expect(readSafetensors(path.join(dir, 'huge.st'))).rejects.toThrow(/header length 1000 exceeds the file size/);
    await expect(readSafetensors(path.join(dir, 'missing.st'))).rejects.toThrow(/cannot open/);
  });
});
