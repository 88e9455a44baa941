/**
 * `smolvla-node serve`: a policy over the network in openpi's WebSocket protocol (what openpi's
 * `WebsocketClientPolicy` and the robot runtimes built on it speak). Loopback by default; another
 * address needs an API key. Runs until SIGINT/SIGTERM.
 */
import { SmolVLAPolicy } from '../policy';
import { buildInfo, setNumThreads } from '../runtime';
import { policyBackend, WebSocketPolicyServer } from '../serving/websocket';
import { byteTokenizer } from '../train/byteTokenizer';
import { tinyConfig } from '../train/presets';
import { loadDemoModel } from './demoModel';
import { flagValue, formatFlagHelp, parseFlags, type FlagSpec } from './flags';
import type { CliIO } from './progress';
import { SmolVLAError } from '../errors';

const FLAGS: readonly FlagSpec[] = [
  { name: 'policy.path', type: 'string', help: 'checkpoint folder (config.json, model.safetensors, statistics, tokenizer)' },
  { name: 'policy.builtin', type: 'string', help: "instead of a checkpoint: 'demo', the demo's trained model (assets/demo-model), or 'tiny', the toy model with random weights from --seed" },
  { name: 'host', type: 'string', default: '127.0.0.1', help: 'address to bind; anything but loopback needs --api_key' },
  { name: 'port', type: 'int', default: 8000, help: 'TCP port (0: any free port)' },
  { name: 'api_key', type: 'string', help: 'clients must send "Authorization: Api-Key <key>" (also read from SMOLVLA_API_KEY)' },
  { name: 'max_connections', type: 'int', default: 16, help: 'open connections at most' },
  { name: 'idle_timeout_s', type: 'number', default: 300, help: 'close a connection after this long without a frame' },
  { name: 'slow_sender_timeout_s', type: 'number', default: 10, help: 'a frame that starts arriving must be complete within this' },
  { name: 'max_frame_mb', type: 'number', default: 16, help: 'largest observation frame' },
  { name: 'max_batch', type: 'int', default: 8, help: 'observations from different connections joined into one model call' },
  { name: 'batch_wait_ms', type: 'number', default: 2, help: 'how long an observation waits for others when the model is idle' },
  { name: 'fps', type: 'number', help: 'control rate the policy was trained at (sent in the metadata)' },
  { name: 'threads', type: 'int', default: 2, help: 'libtorch threads' },
  { name: 'seed', type: 'int', default: 0, help: '--policy.builtin weights' },
];

export function serveHelp(): string {
  return `usage: smolvla-node serve (--policy.path=DIR | --policy.builtin=demo|tiny) [--flag=value ...]\n${formatFlagHelp([{ title: 'serve flags', specs: FLAGS }])}\n`;
}

async function loadPolicy(path: string | undefined, builtin: string | undefined, seed: number): Promise<{ policy: SmolVLAPolicy; name: string }> {
  if ((path === undefined) === (builtin === undefined)) throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', 'serve: give exactly one of --policy.path=DIR or --policy.builtin=demo|tiny');
  if (builtin === 'demo') return { policy: (await loadDemoModel({ random: false, seed })).policy, name: 'builtin:demo' };
  if (builtin !== undefined) {
    if (builtin !== 'tiny') throw new SmolVLAError('ERR_SMOLVLA_ARGUMENT', `--policy.builtin: expected 'demo' or 'tiny', got '${builtin}'`);
    return { policy: await SmolVLAPolicy.create(tinyConfig(), { seed, tokenizer: byteTokenizer() }), name: `builtin:tiny (seed ${seed})` };
  }
  return { policy: await SmolVLAPolicy.fromPretrained(path!), name: path! };
}

/** Resolves when `signal` aborts (the CLI passes SIGINT/SIGTERM; tests pass their own). */
export async function runServe(argv: readonly string[], io: CliIO, stop?: AbortSignal): Promise<number> {
  const parsed = parseFlags(argv, FLAGS);
  if (parsed.help) {
    io.stdout.write(serveHelp());
    return 0;
  }
  const flag = <T>(name: string): T => flagValue<T>(parsed.values, FLAGS, name);
  setNumThreads(flag<number>('threads'));
  const { policy, name } = await loadPolicy(flag<string | undefined>('policy.path'), flag<string | undefined>('policy.builtin'), flag<number>('seed'));
  for (const w of policy.warnings) io.stderr.write(`warning: ${w}\n`);
  const apiKey = flag<string | undefined>('api_key') ?? process.env.SMOLVLA_API_KEY;
  const fps = flag<number | undefined>('fps');
  const log = (line: string) => io.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const server = new WebSocketPolicyServer(policyBackend(policy, { ...(fps !== undefined ? { fps } : {}), extra: { checkpoint: name } }), {
    host: flag<string>('host'),
    port: flag<number>('port'),
    ...(apiKey ? { apiKey } : {}),
    maxConnections: flag<number>('max_connections'),
    idleTimeoutMs: flag<number>('idle_timeout_s') * 1000,
    slowSenderTimeoutMs: flag<number>('slow_sender_timeout_s') * 1000,
    wire: { maxFrameBytes: Math.round(flag<number>('max_frame_mb') * 1024 * 1024) },
    batch: { maxBatch: flag<number>('max_batch'), maxWaitMs: flag<number>('batch_wait_ms') },
    log,
  });
  const { url } = await server.listen();
  const info = buildInfo();
  io.stdout.write(`smolvla-node serve: ${name} on ${url} (libtorch ${info.torchVersion}; chunk ${policy.config.chunkSize}, action_dim ${policy.preprocessor.spec.actionDim})\n`);
  await new Promise<void>((resolve) => {
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
    const done = () => {
      signals.forEach((s) => process.off(s, done));
      stop?.removeEventListener('abort', done);
      resolve();
    };
    signals.forEach((s) => process.once(s, done));
    stop?.addEventListener('abort', done, { once: true });
  });
  await server.close();
  const stats = server.stats();
  io.stdout.write(`served ${stats.requests} requests on ${stats.connectionsTotal} connections (${stats.errors} errors)\n`);
  return 0;
}
