/**
 * Property tests explore a fixed slice of their input space per run so CI is reproducible; set
 * FC_SEED to explore another (a failure prints its seed and counterexample).
 */
import fc from 'fast-check';

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20261126) });

// Jest runs each test file in its own V8 context, whose Symbol lacks the dispose symbols Node adds
// to the main context; give that context its own so `using` and [Symbol.dispose] work in tests.
const symbols = Symbol as unknown as Record<string, symbol | undefined>;
symbols.dispose ??= Symbol('Symbol.dispose');
symbols.asyncDispose ??= Symbol('Symbol.asyncDispose');
