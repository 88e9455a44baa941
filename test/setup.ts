/**
 * Property tests explore a fixed slice of their input space per run so CI is reproducible; set
 * FC_SEED to explore another (a failure prints its seed and counterexample).
 */
import fc from 'fast-check';

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20261126) });
