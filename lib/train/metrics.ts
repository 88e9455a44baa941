/**
 * `output_dir/metrics.jsonl`: one JSON object per line — training records every `log_freq` steps,
 * evaluation records, and a final record when a run stops on a non-finite loss. A resumed run first
 * cuts the file back to the length its checkpoint recorded, so lines from steps that were redone
 * appear once.
 */
import { promises as fsp } from 'node:fs';
import { SmolVLAError } from '../errors';

export type MetricsKind = 'train' | 'eval' | 'diverged';

export interface MetricsRecord {
  kind: MetricsKind;
  /** Optimizer updates taken when the record was made. */
  step: number;
  /** Loss terms and monitoring values; null stands for NaN or an infinity. */
  [name: string]: number | string | null | MetricsKind;
}

export class MetricsLog {
  private constructor(
    readonly file: string,
    private size: number,
  ) {}

  /** Starts the file afresh, or (resuming) keeps its first `keepBytes` bytes. */
  static async open(file: string, keepBytes = 0): Promise<MetricsLog> {
    const handle = await fsp.open(file, 'a+');
    try {
      const { size } = await handle.stat();
      if (keepBytes > size) throw new SmolVLAError('ERR_SMOLVLA_IO', `${file}: the checkpoint expects at least ${keepBytes} bytes of metrics, the file has ${size}`);
      await handle.truncate(keepBytes);
    } finally {
      await handle.close();
    }
    return new MetricsLog(file, keepBytes);
  }

  /** A log that keeps nothing: the other ranks of a data-parallel run (rank 0 writes the file). */
  static discard(): MetricsLog {
    return new MetricsLog('', 0);
  }

  /** Bytes written so far (what a checkpoint stores to resume the log). */
  get bytes(): number {
    return this.size;
  }

  async append(record: MetricsRecord): Promise<void> {
    if (this.file === '') return;
    const line = `${JSON.stringify(record, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`;
    await fsp.appendFile(this.file, line);
    this.size += Buffer.byteLength(line);
  }

  static async read(file: string): Promise<MetricsRecord[]> {
    const text = await fsp.readFile(file, 'utf8');
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l) as MetricsRecord;
        } catch (e) {
          throw new SmolVLAError('ERR_SMOLVLA_IO', `${file} line ${i + 1}: ${(e as Error).message}`);
        }
      });
  }
}
