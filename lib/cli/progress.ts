/**
 * Training progress on the terminal: a cli-progress bar with the loss and steps/s when stdout is a
 * TTY (log lines print above it), plain log lines every `logFreq` steps otherwise (pipes, CI, files).
 */
import { MultiBar, type SingleBar } from 'cli-progress';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

export interface ProgressUpdate {
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  metrics: Record<string, number>;
}

function num(v: number): string {
  return Number.isFinite(v) ? Number(v.toPrecision(4)).toString() : String(v);
}

export class Progress {
  private multi: MultiBar | null = null;
  private bar: SingleBar | null = null;
  private last = 0;
  /** Exponential moving average of steps per second. */
  private rate = 0;

  constructor(
    private readonly io: CliIO,
    private readonly logFreq: number,
  ) {}

  /** Informational line (warnings go to stderr). */
  log(line: string): void {
    const stream = line.startsWith('warning:') ? this.io.stderr : this.io.stdout;
    if (this.multi && stream === this.io.stdout) this.multi.log(`${line}\n`);
    else stream.write(`${line}\n`);
  }

  step(u: ProgressUpdate): void {
    const now = Date.now();
    if (this.last > 0) {
      const inst = 1000 / Math.max(1, now - this.last);
      this.rate = this.rate === 0 ? inst : 0.9 * this.rate + 0.1 * inst;
    }
    this.last = now;
    const payload = { loss: num(u.loss), rate: this.rate.toFixed(2), lr: u.lr.toExponential(2) };
    if (this.io.stdout.isTTY) {
      if (!this.multi) {
        this.multi = new MultiBar({
          stream: this.io.stdout,
          format: 'train |{bar}| {value}/{total} | loss {loss} | {rate} steps/s | lr {lr} | eta {eta_formatted}',
          hideCursor: true,
          etaBuffer: 50,
        });
        this.bar = this.multi.create(u.totalSteps, u.step - 1, payload);
      }
      this.bar?.update(u.step, payload);
      return;
    }
    if (u.step % this.logFreq === 0 || u.step === u.totalSteps) {
      const terms = Object.entries(u.metrics)
        .map(([k, v]) => `${k}=${num(v)}`)
        .join(' ');
      this.io.stdout.write(`step ${u.step}/${u.totalSteps} lr=${payload.lr} grad_norm=${num(u.gradNorm)} steps/s=${payload.rate} ${terms}\n`);
    }
  }

  stop(): void {
    // MultiBar.stop() renders the bars but drops log lines still waiting for the next redraw (the
    // last checkpoint, the evaluation): one more redraw prints them first, above the final bar.
    this.multi?.update();
    this.multi?.stop();
    this.multi = null;
    this.bar = null;
  }
}
