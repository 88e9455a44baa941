/**
 * Seeded randomness and case counts of the fuzz suites: a few thousand cases in CI, ten times more
 * with SMOLVLA_FUZZ=1 (scripts/fuzz.sh). A failure prints its seed and case index, so it replays.
 */
import { seededRandom } from '../../lib/data/random';

export const FUZZ_SCALE = process.env.SMOLVLA_FUZZ === '1' ? 10 : 1;

/** The package's seeded generator (mulberry32). */
export const rng = seededRandom;

export const pick = <T>(r: () => number, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
export const int = (r: () => number, below: number): number => Math.floor(r() * below);

/** What a thrown value must look like: an Error with a package code and a message. */
export function codeOf(err: unknown): string {
  // Duck-typed: errors made by the addon come from another realm than jest's sandbox `Error`.
  if (typeof err !== 'object' || err === null || typeof (err as Error).message !== 'string') return `not an Error: ${String(err)}`;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_SMOLVLA')) return `no code: ${(err as Error).name}: ${(err as Error).message}`;
  if ((err as Error).message.length === 0) return `${code} without a message`;
  return code;
}

/** One byte-level mutation of `bytes` (flip, set, insert, delete, truncate, splice a number). */
export function mutate(r: () => number, bytes: Buffer, headerEnd: number): Buffer {
  const out = Buffer.from(bytes);
  // Most mutations hit the header, where the parser is; the rest anywhere.
  const at = (n: number) => (r() < 0.8 ? int(r, Math.max(1, Math.min(headerEnd, n))) : int(r, Math.max(1, n)));
  switch (int(r, 7)) {
    case 0: {
      const i = at(out.length);
      out[i] = out[i]! ^ (1 << int(r, 8));
      return out;
    }
    case 1:
      out[at(out.length)] = pick(r, [0x00, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0xff]);
      return out;
    case 2: {
      const p = at(out.length);
      return Buffer.concat([out.subarray(0, p), Buffer.from(pick(r, ['[', '{', '"', '0', '-1', '1e308', '18446744073709551615', ' ', '\\u0000'])), out.subarray(p)]);
    }
    case 3: {
      const p = at(out.length);
      return Buffer.concat([out.subarray(0, p), out.subarray(p + 1 + int(r, 8))]);
    }
    case 4:
      return out.subarray(0, int(r, out.length));
    case 5: {
      // The header length itself.
      if (out.length < 8) return out;
      out.writeBigUInt64LE(BigInt(pick(r, [0, 1, headerEnd - 9, headerEnd - 7, headerEnd + 100, 2 ** 32, Number.MAX_SAFE_INTEGER])) & 0xffffffffffffffffn, 0);
      return out;
    }
    default: {
      // A number inside the header replaced by an extreme one.
      const text = out.subarray(8, headerEnd).toString('latin1');
      const numbers = [...text.matchAll(/\d+/g)];
      if (numbers.length === 0) return out;
      const m = pick(r, numbers);
      const replaced = text.slice(0, m.index) + pick(r, ['18446744073709551615', '18446744073709551600', '9223372036854775808', '0', '4294967296']) + text.slice(m.index! + m[0].length);
      const header = Buffer.from(replaced, 'latin1');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(header.length));
      return Buffer.concat([len, header, out.subarray(headerEnd)]);
    }
  }
}
