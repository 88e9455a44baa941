/** The examples run end to end (short), so they cannot rot. */
import { main as adaptiveThreshold } from '../../examples/adaptive-threshold';
import { main as controlLoop } from '../../examples/control-loop';
import { main as policyServer } from '../../examples/policy-server';

describe('examples', () => {
  beforeAll(() => {
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterAll(() => jest.restoreAllMocks());

  it('control-loop executes one finite action per tick, refilling the queue', async () => {
    const actions = await controlLoop(undefined, 23);
    expect(actions).toHaveLength(23);
    expect(actions.every((a) => a.length === 6 && a.every(Number.isFinite))).toBe(true);
  });

  it('policy-server answers /act over loopback with decisions', async () => {
    const replies = await policyServer(6);
    expect(replies).toHaveLength(6);
    expect(replies[0]!.decision).toBe('miss');
    expect(new Set(replies.map((r) => r.decision)).size).toBeGreaterThan(1);
  });

  it('adaptive-threshold relaxes a strict threshold on a steady scene', async () => {
    const thresholds = await adaptiveThreshold(40);
    expect(thresholds[0]).toBeCloseTo(0.8);
    expect(thresholds[thresholds.length - 1]!).toBeLessThan(0.8);
  });
});
