/** Parquet access for LeRobot files: hyparquet to read, hyparquet-writer to write (tests, writer). */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

import type { SchemaElement } from 'hyparquet';

import { hyparquet, hyparquetWriter } from './esm';
import { SmolVLAError } from '../errors';

export type ParquetRow = Record<string, unknown>;

export interface ParquetTable {
  rows: ParquetRow[];
  /** Top-level column names in file order. */
  columns: string[];
  numRows: number;
  /** File key/value metadata (e.g. the `pandas` index description). */
  keyValue: Record<string, string>;
}

/**
 * Reads `columns` (all when omitted) of rows [rowStart, rowEnd) as objects. Binary columns without a
 * UTF-8 annotation (embedded PNG/JPEG bytes) stay Uint8Array; INT64 values come back as bigint.
 */
export async function readParquet(
  file: string,
  opts: { columns?: string[]; rowStart?: number; rowEnd?: number } = {},
): Promise<ParquetTable> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } = await hyparquet();
  // hyparquet's own file reader: its promises must come from hyparquet's realm (it checks
  // `instanceof Promise`, which fails for promises made inside a jest sandbox).
  const buffer = await asyncBufferFromFile(file).catch((err: NodeJS.ErrnoException) => {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `cannot open Parquet file ${file}: ${err.message}`);
  });
  const metadata = await parquetMetadataAsync(buffer).catch((err: Error) => {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file} is not a readable Parquet file: ${err.message}`);
  });
  const columns = parquetSchema(metadata).children.map((child) => child.element.name);
  const missing = (opts.columns ?? []).filter((name) => !columns.includes(name));
  if (missing.length > 0) {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `${file} has no column ${missing.map((m) => `'${m}'`).join(', ')}; it has ${columns.join(', ')}`);
  }
  const rows = await parquetReadObjects({
    file: buffer,
    metadata,
    utf8: false,
    ...(opts.columns ? { columns: opts.columns } : {}),
    ...(opts.rowStart !== undefined ? { rowStart: opts.rowStart } : {}),
    ...(opts.rowEnd !== undefined ? { rowEnd: opts.rowEnd } : {}),
  }).catch((err: Error) => {
    throw new SmolVLAError('ERR_SMOLVLA_IO', `cannot decode ${file}: ${err.message}`);
  });
  const keyValue: Record<string, string> = {};
  for (const kv of metadata.key_value_metadata ?? []) keyValue[kv.key] = kv.value ?? '';
  return { rows, columns, numRows: Number(metadata.num_rows), keyValue };
}

/** A scalar as a JS number (INT64 cells arrive as bigint). */
export function cellNumber(value: unknown, what: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  throw new SmolVLAError('ERR_SMOLVLA_IO', `${what}: expected a number, got ${describe(value)}`);
}

/** A (possibly nested) list of numbers, or a lone number, flattened. */
export function cellNumbers(value: unknown, what: string): number[] {
  const out: number[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) Array.from(v as unknown as ArrayLike<number | bigint>, walk);
    else out.push(cellNumber(v, what));
  };
  walk(value);
  return out;
}

export function cellString(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  // ArrayBuffer.isView rather than instanceof: hyparquet's arrays may come from another realm.
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  throw new SmolVLAError('ERR_SMOLVLA_IO', `${what}: expected a string, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 40) ?? ''}`;
}

/** Column types the writer needs, mapped to the Parquet layout pyarrow produces. */
export type ParquetType =
  | 'INT64'
  | 'FLOAT'
  | 'DOUBLE'
  | 'STRING'
  | 'BYTES'
  | { list: ParquetType }
  | { struct: Array<[string, ParquetType]> };

export interface ParquetColumn {
  name: string;
  type: ParquetType;
  data: unknown[];
}

function schemaOf(name: string, type: ParquetType): SchemaElement[] {
  if (typeof type === 'string') {
    const leaf: SchemaElement = { name, repetition_type: 'OPTIONAL', type: type === 'STRING' || type === 'BYTES' ? 'BYTE_ARRAY' : type };
    if (type === 'STRING') leaf.converted_type = 'UTF8';
    return [leaf];
  }
  if ('list' in type) {
    return [
      { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      ...schemaOf('element', type.list),
    ];
  }
  return [
    { name, repetition_type: 'OPTIONAL', num_children: type.struct.length },
    ...type.struct.flatMap(([child, childType]) => schemaOf(child, childType)),
  ];
}

/** hyparquet-writer wants bigint for INT64 leaves. */
function toWritable(value: unknown, type: ParquetType): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'INT64') return typeof value === 'bigint' ? value : BigInt(value as number);
  if (typeof type === 'string') return value;
  if ('list' in type) return Array.from(value as ArrayLike<unknown>, (v) => toWritable(v, type.list));
  const record = value as Record<string, unknown>;
  return Object.fromEntries(type.struct.map(([key, childType]) => [key, toWritable(record[key], childType)]));
}

export async function writeParquet(file: string, columns: ParquetColumn[], keyValue: Record<string, string> = {}): Promise<void> {
  const { parquetWriteBuffer } = await hyparquetWriter();
  const schema: SchemaElement[] = [
    { name: 'schema', num_children: columns.length },
    ...columns.flatMap((c) => schemaOf(c.name, c.type)),
  ];
  const buffer = parquetWriteBuffer({
    columnData: columns.map((c) => ({ name: c.name, data: c.data.map((v) => toWritable(v, c.type)) })),
    schema,
    kvMetadata: Object.entries(keyValue).map(([key, value]) => ({ key, value })),
  });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, new Uint8Array(buffer));
}
