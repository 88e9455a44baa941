/** safetensors files: memory-mapped reads and atomic writes, in C++ (native/io/safetensors.cc). */
import { native } from './native';
import { Tensor } from './tensor';

export interface SafetensorsContent {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Reads a file lazily (pages load when a tensor is used). Corrupt or truncated files reject with an Error naming the problem. */
export async function readSafetensors(file: string): Promise<SafetensorsContent> {
  const raw = await native.readSafetensors(file);
  const tensors = new Map<string, Tensor>();
  for (const [name, handle] of Object.entries(raw.tensors)) tensors.set(name, new Tensor(handle));
  return { tensors, metadata: raw.metadata };
}

/** Writes atomically (temporary file, fsync, rename): a crash leaves the old file or the new one. */
export async function writeSafetensors(
  file: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  await native.writeSafetensors(
    file,
    entries.map(([name]) => name),
    entries.map(([, t]) => t.handle),
    metadata,
  );
}
