/** AbortSignal -> native cancellation token, checked between denoising steps. */
import { argumentError, SmolVLAError } from '../errors';
import { native, type NativeCancel } from '../native';

export interface Cancellable {
  /** Abort the work (it rejects with a SmolVLAError named 'AbortError', code ERR_SMOLVLA_ABORTED). */
  signal?: AbortSignal;
  /** Give up after this many milliseconds (same rejection). */
  timeoutMs?: number;
}

/** The rejection of aborted work: named 'AbortError' (the DOM convention), code ERR_SMOLVLA_ABORTED. */
export function abortError(signal: AbortSignal): SmolVLAError {
  const err = new SmolVLAError('ERR_SMOLVLA_ABORTED', signal.reason instanceof Error ? signal.reason.message : 'the operation was aborted');
  err.name = 'AbortError';
  return err;
}

/** Runs `work` with a native token wired to the signal and/or the timeout. */
export async function withCancel<T>(options: Cancellable, work: (token: NativeCancel | null) => Promise<T>): Promise<T> {
  const signals: AbortSignal[] = [];
  if (options.signal) signals.push(options.signal);
  if (options.timeoutMs !== undefined) {
    if (!(options.timeoutMs > 0)) throw argumentError('timeoutMs', 'a positive number', options.timeoutMs);
    signals.push(AbortSignal.timeout(options.timeoutMs));
  }
  if (signals.length === 0) return work(null);
  const signal = signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
  if (signal.aborted) throw abortError(signal);
  const token = new native.NativeCancel();
  const onAbort = () => token.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await work(token);
  } catch (err) {
    if (signal.aborted) throw abortError(signal);
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
