/**
 * Every error the package throws carries a stable `code` (Node's convention), so callers branch on
 * the code, never on message text. Native errors arrive with the same codes (native/napi/errors.h).
 */
export type ErrorCode =
  /** A bad argument: wrong type, shape, dtype or range. The message names the argument. */
  | 'ERR_SMOLVLA_ARGUMENT'
  /** A configuration value out of its domain; the message names the key. */
  | 'ERR_SMOLVLA_CONFIG'
  /** A file or folder that is missing, unreadable or malformed. */
  | 'ERR_SMOLVLA_IO'
  /** A network message that breaks the protocol or its limits. */
  | 'ERR_SMOLVLA_PROTOCOL'
  /** NaN or infinity where finite numbers are required (inputs or a computed chunk). */
  | 'ERR_SMOLVLA_NOT_FINITE'
  /** Work cancelled through an AbortSignal or a time limit. */
  | 'ERR_SMOLVLA_ABORTED'
  /** An object used after dispose(). */
  | 'ERR_SMOLVLA_DISPOSED'
  /** A multi-process run failed: rendezvous, a dead or stuck peer, ranks out of step. */
  | 'ERR_SMOLVLA_DISTRIBUTED'
  /** libtorch refused an operation (from native code). */
  | 'ERR_SMOLVLA_TORCH'
  /** Memory ran out (host, or a GPU: CUDA out of memory); the model stays usable. */
  | 'ERR_SMOLVLA_OOM'
  /** A CUDA failure reported by libtorch (launch error, illegal access, no kernel for this GPU). */
  | 'ERR_SMOLVLA_CUDA'
  /** No native binary loads against the libtorch found (the message says what to build). */
  | 'ERR_SMOLVLA_ADDON'
  /** Anything else. */
  | 'ERR_SMOLVLA';

export class SmolVLAError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SmolVLAError';
    this.code = code;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as ArrayLike<unknown>).length ?? value.byteLength}`;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value;
}

/** `<name> must be <expected>, got <value>` with the `ERR_SMOLVLA_ARGUMENT` code. */
export function argumentError(name: string, expected: string, got: unknown): SmolVLAError {
  return new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `${name} must be ${expected}, got ${describe(got)}`);
}

/**
 * An error from the addon (an Error whose `code` is one of ours) as a SmolVLAError with the same code
 * and message, so callers that branch on `instanceof SmolVLAError` treat it like the JS checks it
 * replaced; anything else is returned unchanged.
 */
export function asSmolVLAError(err: unknown): unknown {
  // Duck-typed: the addon's errors may come from another realm's Error (a vm context, jest).
  if (err instanceof SmolVLAError || typeof err !== 'object' || err === null) return err;
  const { code, message } = err as { code?: unknown; message?: unknown };
  return typeof code === 'string' && code.startsWith('ERR_SMOLVLA') && typeof message === 'string'
    ? new SmolVLAError(code as ErrorCode, message, { cause: err })
    : err;
}
