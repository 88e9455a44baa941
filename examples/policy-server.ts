/**
 * The network-facing policy server: typed, size-limited JSON over HTTP on loopback (no pickles, no
 * code: LeRobot's pickle-over-gRPC server lets any client run code on the host). A client posts
 * observations to /act and gets the action to execute plus the cache decision; /stats and /reset.
 *
 *   npm run build:ts && node dist/examples/policy-server.js
 */
import { data, PolicyHttpServer, PolicyServer, SmolVLAPolicy, training, type ActMessage } from 'smolvla-node';

const { sceneCamera } = data;
const { byteTokenizer, tinyConfig } = training;

export async function main(requests = 6): Promise<Array<{ decision: string; action: number[] }>> {
  const policy = await SmolVLAPolicy.create(tinyConfig(), { seed: 0, tokenizer: byteTokenizer() });
  // This model has random weights: its CLS similarities sit around 0.2–0.35 on an unchanged scene and
  // drop at a scene change. A trained model gets its threshold from calibrateThreshold (see the demo).
  policy.clsThreshold = 0.18;
  const server = new PolicyServer(policy, { hitMode: 'refine', reuseSteps: 1 });
  const http = new PolicyHttpServer(server, { host: '127.0.0.1', port: 0 });
  const { url } = await http.listen();
  console.log(`serving on ${url}`);
  const camera = sceneCamera(64, 64, 2);
  const replies: Array<{ decision: string; action: number[] }> = [];
  try {
    for (let i = 0; i < requests; i++) {
      const frame = camera.frame(i < requests / 2 ? 0 : 1, i); // the scene changes half way
      const chw = new Uint8Array(3 * 64 * 64);
      for (let p = 0; p < 64 * 64; p++) for (let c = 0; c < 3; c++) chw[c * 64 * 64 + p] = frame.data[p * 3 + c]!;
      const message: ActMessage = {
        observation: {
          'observation.images.top': { shape: [1, 3, 64, 64], dtype: 'uint8', data: Buffer.from(chw).toString('base64') },
          'observation.state': { shape: [1, 6], dtype: 'float32', data: [0, 0, 0, 0, 0, 0] },
        },
        task: 'stack the blocks',
      };
      const res = await fetch(`${url}/act`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(message) });
      const body = (await res.json()) as { decision: { kind: string }; actions: number[][]; similarity: { mean: number } | null };
      if (!res.ok) throw new Error(`/act failed: ${JSON.stringify(body)}`);
      replies.push({ decision: body.decision.kind, action: body.actions[0]! });
      console.log(`request ${i}: ${body.decision.kind}, similarity ${body.similarity ? body.similarity.mean.toFixed(4) : '-'}`);
    }
    console.log('stats:', JSON.stringify(await (await fetch(`${url}/stats`)).json()).slice(0, 200), '...');
  } finally {
    await http.close();
    await server.dispose();
  }
  return replies;
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
