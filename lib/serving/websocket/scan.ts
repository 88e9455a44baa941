/**
 * A structural check of a msgpack frame before anything decodes it. msgpackr, like most msgpack
 * libraries, decodes extension types through a process-wide registry (BigInt, Error, RegExp, Set,
 * typed arrays, structured clones, ...), so refusing them by configuration alone is not reliable.
 * This walk reads only the type bytes and declared lengths, without allocating, and refuses:
 * every extension type, reserved bytes, map keys other than strings or bytes, declared lengths that
 * run past the end of the frame (so a 4-GiB length in a 20-byte frame costs nothing), nesting deeper
 * than a limit, strings longer than a limit, more container entries than a limit, trailing bytes.
 */
import { SmolVLAError } from '../../errors';

export interface ScanLimits {
  /** Containers inside containers; the top-level map is depth 1. */
  maxDepth: number;
  /** Longest string, in bytes. */
  maxStringBytes: number;
  /** Map and array entries in the whole frame (a map entry counts once). */
  maxEntries: number;
}

function fail(offset: number, message: string): never {
  throw new SmolVLAError('ERR_SMOLVLA_PROTOCOL', `msgpack frame, byte ${offset}: ${message}`);
}

/** What one header says: a scalar of `skip` payload bytes, or a container of `entries` items. */
interface Header {
  /** Bytes taken by the type byte and its length fields. */
  head: number;
  /** Payload bytes after the header (strings, bytes, numbers). */
  skip: number;
  /** Items that follow (array: n, map: 2n), or -1 for a scalar. */
  items: number;
  kind: 'str' | 'bin' | 'map' | 'array' | 'other';
}

function readLength(buf: Uint8Array, at: number, bytes: 1 | 2 | 4): number {
  if (at + bytes > buf.length) fail(at, 'truncated length field');
  if (bytes === 1) return buf[at]!;
  if (bytes === 2) return (buf[at]! << 8) | buf[at + 1]!;
  return ((buf[at]! << 24) >>> 0) + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!);
}

/** Fixed-size scalars: type byte -> payload bytes (nil, booleans, floats, integers). */
const FIXED: Record<number, number> = { 0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8, 0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8 };

/** Types with a length field: type byte -> [field bytes, kind, items per count (0: the count is payload bytes)]. */
const SIZED: Record<number, [1 | 2 | 4, Header['kind'], number]> = {
  0xc4: [1, 'bin', 0],
  0xc5: [2, 'bin', 0],
  0xc6: [4, 'bin', 0],
  0xd9: [1, 'str', 0],
  0xda: [2, 'str', 0],
  0xdb: [4, 'str', 0],
  0xdc: [2, 'array', 1],
  0xdd: [4, 'array', 1],
  0xde: [2, 'map', 2],
  0xdf: [4, 'map', 2],
};

function header(buf: Uint8Array, at: number): Header {
  const b = buf[at]!;
  if (b <= 0x7f || b >= 0xe0) return { head: 1, skip: 0, items: -1, kind: 'other' };
  if (b <= 0x8f) return { head: 1, skip: 0, items: 2 * (b & 0x0f), kind: 'map' };
  if (b <= 0x9f) return { head: 1, skip: 0, items: b & 0x0f, kind: 'array' };
  if (b <= 0xbf) return { head: 1, skip: b & 0x1f, items: -1, kind: 'str' };
  const fixed = FIXED[b];
  if (fixed !== undefined) return { head: 1, skip: fixed, items: -1, kind: 'other' };
  const sized = SIZED[b];
  if (sized) {
    const [bytes, kind, perCount] = sized;
    const n = readLength(buf, at + 1, bytes);
    return perCount === 0 ? { head: 1 + bytes, skip: n, items: -1, kind } : { head: 1 + bytes, skip: 0, items: perCount * n, kind };
  }
  // 0xc1 (never used), 0xc7-0xc9 (ext 8/16/32), 0xd4-0xd8 (fixext 1-16).
  return fail(at, b === 0xc1 ? 'reserved type byte 0xc1' : `extension type (0x${b.toString(16)}) refused: only maps, arrays, strings, bytes, numbers, booleans and nil are accepted`);
}

/** Throws ERR_SMOLVLA_PROTOCOL unless `buf` holds exactly one msgpack value within the limits. */
export function scanMsgpack(buf: Uint8Array, limits: ScanLimits): void {
  if (buf.length === 0) fail(0, 'empty frame');
  // remaining[d]: items still to read in the container at depth d; isMap[d]: keys are at even positions.
  const remaining: number[] = [1];
  const isMap: boolean[] = [false];
  let entries = 0;
  let at = 0;
  while (remaining.length > 0) {
    const depth = remaining.length - 1;
    if (remaining[depth] === 0) {
      remaining.pop();
      isMap.pop();
      continue;
    }
    if (at >= buf.length) fail(at, 'truncated: the frame ends inside a value');
    const left = remaining[depth]!;
    remaining[depth] = left - 1;
    const h = header(buf, at);
    if (isMap[depth] && left % 2 === 0 && h.kind !== 'str' && h.kind !== 'bin') fail(at, 'map keys must be strings or bytes');
    if (h.kind === 'str' && h.skip > limits.maxStringBytes) fail(at, `string of ${h.skip} bytes exceeds the limit of ${limits.maxStringBytes}`);
    const end = at + h.head + h.skip;
    if (end > buf.length) fail(at, `declared length ${h.skip} runs past the end of the ${buf.length}-byte frame`);
    at = end;
    if (h.items < 0) continue;
    // Every item takes at least one byte: a count the rest of the frame cannot hold is a lie.
    if (h.items > buf.length - at) fail(at, `declared ${h.kind} of ${h.kind === 'map' ? h.items / 2 : h.items} entries cannot fit in the ${buf.length - at} bytes left`);
    entries += h.kind === 'map' ? h.items / 2 : h.items;
    if (entries > limits.maxEntries) fail(at, `more than ${limits.maxEntries} map/array entries`);
    if (remaining.length >= limits.maxDepth + 1) fail(at, `nesting deeper than ${limits.maxDepth}`);
    remaining.push(h.items);
    isMap.push(h.kind === 'map');
  }
  if (at !== buf.length) fail(at, `${buf.length - at} trailing bytes after the value`);
}
