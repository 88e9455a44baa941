/**
 * Command-line flags in LeRobot's draccus style: dotted names (`--policy.use_cls_head`), values as
 * `--name=value` or `--name value`, booleans written True/False/true/false (or 1/0; a bare boolean
 * flag means true), lists and objects as JSON (Python-style tuples `(a, b)` are accepted too).
 * Unknown flags are errors that suggest the closest known name.
 */
import { SmolVLAError } from '../errors';

export type FlagType = 'int' | 'number' | 'bool' | 'string' | 'json';

export interface FlagSpec {
  /** The name without the leading dashes, e.g. `policy.use_cls_head`. */
  name: string;
  type: FlagType;
  /** Shown by --help; undefined prints as "none". */
  default?: unknown;
  help: string;
}

export type FlagValue = number | boolean | string | unknown[] | Record<string, unknown>;

export interface ParsedFlags {
  /** Values of the flags given on the command line (later occurrences win). */
  values: Map<string, FlagValue>;
  /** Whether --help (or -h) was given; nothing else is checked then. */
  help: boolean;
}

const TRUE = new Set(['true', 'True', 'TRUE', '1', 'yes']);
const FALSE = new Set(['false', 'False', 'FALSE', '0', 'no']);

/** Converts one raw value to the flag's type; errors name the flag, the type and the value. */
export function convertFlag(spec: FlagSpec, raw: string): FlagValue {
  const fail = (expected: string): never => {
    throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--${spec.name}: expected ${expected}, received ${JSON.stringify(raw)}`);
  };
  switch (spec.type) {
    case 'bool':
      if (TRUE.has(raw)) return true;
      if (FALSE.has(raw)) return false;
      return fail('a boolean (True, False, true or false)');
    case 'int': {
      const v = Number(raw.trim());
      return /^[+-]?\d+$/.test(raw.trim()) && Number.isSafeInteger(v) ? v : fail('an integer');
    }
    case 'number': {
      const v = Number(raw.trim());
      return raw.trim() !== '' && Number.isFinite(v) ? v : fail('a finite number');
    }
    case 'string':
      return raw;
    case 'json': {
      // Python tuples and booleans as users type them for draccus (`(512, 512)`, `True`).
      const text = raw
        .trim()
        .replace(/^\((.*)\)$/s, '[$1]')
        .replace(/\bTrue\b/g, 'true')
        .replace(/\bFalse\b/g, 'false')
        .replace(/\bNone\b/g, 'null');
      try {
        return JSON.parse(text) as FlagValue;
      } catch {
        return fail('a JSON value (e.g. [512, 512] or {"VISUAL": "IDENTITY"})');
      }
    }
  }
}

/** Levenshtein distance (names are short; the quadratic table is fine). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost));
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** The known name closest to `name` (null when nothing is reasonably close). */
export function closestFlag(name: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestScore = Infinity;
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  for (const k of known) {
    // A right field under the wrong (or missing) group, e.g. `--use_cls_head`, scores as close.
    const kLeaf = k.slice(k.lastIndexOf('.') + 1);
    const score = Math.min(distance(name, k), kLeaf === leaf ? 1 : Infinity);
    if (score < bestScore) {
      bestScore = score;
      best = k;
    }
  }
  return best !== null && bestScore <= Math.max(3, Math.floor(name.length / 3)) ? best : null;
}

/** Parses `argv` (the arguments after the subcommand) against `specs`. */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map<string, FlagValue>();
  if (argv.some((a) => a === '--help' || a === '-h')) return { values, help: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--') || arg === '--') {
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `unexpected argument ${JSON.stringify(arg)}: flags look like --name=value (see --help)`);
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = byName.get(name);
    if (!spec) {
      const hint = closestFlag(name, [...byName.keys()]);
      throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `unknown flag --${name}${hint ? `; did you mean --${hint}?` : ''} (see --help)`);
    }
    let raw: string;
    if (eq >= 0) {
      raw = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      const takesNext = next !== undefined && !next.startsWith('--');
      if (spec.type === 'bool' && !(takesNext && (TRUE.has(next) || FALSE.has(next)))) {
        raw = 'true';
      } else if (!takesNext) {
        throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--${name}: missing value (write --${name}=<value> or --${name} <value>)`);
      } else {
        raw = next;
        i++;
      }
    }
    values.set(name, convertFlag(spec, raw));
  }
  return { values, help: false };
}

/** A flag's value: the one given on the command line, else its spec's default. */
export function flagValue<T>(values: ReadonlyMap<string, FlagValue>, specs: readonly FlagSpec[], name: string): T {
  return (values.has(name) ? values.get(name) : specs.find((f) => f.name === name)?.default) as T;
}

function formatDefault(value: unknown): string {
  if (value === undefined || value === null) return 'none';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'string') return value === '' ? '""' : value;
  return JSON.stringify(value);
}

/** One line per flag: `--name=<type>  help (default: value)`, in groups with a heading each. */
export function formatFlagHelp(groups: ReadonlyArray<{ title: string; specs: readonly FlagSpec[] }>): string {
  const lines: string[] = [];
  const width = Math.max(...groups.flatMap((g) => g.specs.map((s) => s.name.length + s.type.length + 5)));
  for (const g of groups) {
    lines.push('', `${g.title}:`);
    for (const s of g.specs) {
      const head = `  --${s.name}=<${s.type}>`;
      lines.push(`${head.padEnd(width + 2)}  ${s.help} (default: ${formatDefault(s.default)})`);
    }
  }
  return lines.join('\n');
}
