import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { RolloutSpec, RolloutStrategy } from '@podfleet/shared';
import { batchKinds, effectiveSettings } from './settings.js';

describe('effective rollout settings', () => {
  it('keeps the strategy as it was without a policy: no bake, windows, budget or rate', () => {
    const strategy = RolloutStrategy.parse({
      canary: 1,
      maxFailures: 2,
      pauseBetweenBatches: '30s',
      approveAfterCanary: true,
    });
    const settings = effectiveSettings(strategy, batchKinds(3, 1));
    expect(settings).toMatchObject({
      timing: { bake: 0, healthTimeout: 300 },
      threshold: { maxFailures: 2 },
      bakeBetweenBatches: 30,
      offlineDevices: 'wait',
      windows: [],
      rate: { kind: 'fixed' },
      problems: [],
    });
    expect([...settings.approvalPoints]).toEqual([0]);
    expect(settings.budget).toBeUndefined();
    expect(settings.abort).toBeUndefined();
  });

  it('lets each part of a policy replace its strategy field', () => {
    const strategy = RolloutStrategy.parse({
      maxFailures: 2,
      pauseBetweenBatches: '30s',
      offlineDevices: 'skip',
      policy: {
        successThreshold: '80%',
        bakeBetweenBatches: '5m',
        offlineDevices: 'defer',
        approval: { after: [1] },
      },
    });
    const settings = effectiveSettings(strategy, batchKinds(3, 0));
    expect(settings).toMatchObject({
      timing: { bake: 60 },
      threshold: { successThreshold: '80%' },
      bakeBetweenBatches: 300,
      offlineDevices: 'defer',
    });
    expect([...settings.approvalPoints]).toEqual([1]);
  });

  it('accepts the example spec in examples/rollout-policy.yaml, every part of the policy in it', async () => {
    const path = fileURLToPath(
      new URL('../../../../../examples/rollout-policy.yaml', import.meta.url),
    );
    const spec = RolloutSpec.parse(parseYaml(await readFile(path, 'utf8')));
    const settings = effectiveSettings(spec.strategy, batchKinds(6, spec.strategy.canary));
    expect(settings.problems).toEqual([]);
    expect(settings.windows.map((w) => w.label)).toEqual([
      'Mon-Fri 01:00-05:00 Europe/Berlin',
      'Sat,Sun 00:00-24:00 Europe/Paris',
    ]);
    expect(settings.abort).toMatchObject({ onAbort: 'revert', failureRate: '20%' });
  });
});
