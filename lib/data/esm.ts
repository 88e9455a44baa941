/**
 * hyparquet and hyparquet-writer ship only as ES modules, while this package compiles to CommonJS.
 * Node >= 20.19 can require() an ES module; the real loader is taken from process.getBuiltinModule
 * because test runners (jest) swap `require` for a sandboxed one that cannot load ES modules. Older
 * Node versions fall back to a genuine dynamic import().
 */
// The Node entry of hyparquet (what `require('hyparquet')` resolves to) adds asyncBufferFromFile.
import type * as Hyparquet from 'hyparquet/types/node';
import type * as HyparquetWriter from 'hyparquet-writer';

const loaded = new Map<string, Promise<unknown>>();

/** Loads an ES-module-only package once (the tests load their independent Parquet writer this way too). */
export function loadEsm<T>(specifier: string): Promise<T> {
  let pending = loaded.get(specifier);
  if (!pending) {
    pending = (async () => {
      const moduleApi = process.getBuiltinModule('node:module');
      try {
        return moduleApi.createRequire(__filename)(specifier) as unknown;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ERR_REQUIRE_ESM') throw err;
      }
      // Built at run time so TypeScript's CommonJS output does not rewrite it into require().
      const dynamicImport = new Function('s', 'return import(s)') as (s: string) => Promise<unknown>;
      return dynamicImport(specifier);
    })();
    loaded.set(specifier, pending);
  }
  return pending as Promise<T>;
}

export const hyparquet = (): Promise<typeof Hyparquet> => loadEsm('hyparquet');
export const hyparquetWriter = (): Promise<typeof HyparquetWriter> => loadEsm('hyparquet-writer');
