import { describe, expect, it } from 'vitest';
import { formatIssues } from '../spec/text.js';
import { RolloutSpec, resolveCount } from './rollout-spec.js';

describe('RolloutSpec', () => {
  it('fills in the strategy defaults', () => {
    const spec = RolloutSpec.parse({
      service: 'web',
      image: 'registry.example/web:2',
      targets: { groups: ['edge'] },
    });
    expect(spec.strategy).toEqual({
      canary: 0,
      batchSize: '10%',
      maxFailures: 0,
      healthTimeout: 300,
      pauseBetweenBatches: 0,
      autoRollback: true,
      offlineDevices: 'wait',
      approveAfterCanary: false,
    });
  });

  it.each([
    [
      { service: 'web', targets: { groups: ['g'] } },
      'image: give exactly one of image or revision',
    ],
    [
      { service: 'web', image: 'r.example/w:1', targets: {} },
      'targets: name at least one group or a selector',
    ],
    [
      {
        service: 'web',
        image: 'r.example/w:1',
        targets: { groups: ['g'] },
        strategy: { batchSize: '150%' },
      },
      'strategy.batchSize',
    ],
    [
      { service: 'web', image: 'img', targets: { groups: ['g'] } },
      'image: names no version: give a tag or a digest (img:2, img@sha256:…)',
    ],
    [
      { service: 'web', image: 'registry.example/acme/web', targets: { groups: ['g'] } },
      'image: names no version',
    ],
    [
      { service: 'web', image: 'Web:2', targets: { groups: ['g'] } },
      'image: not an image reference',
    ],
  ])('rejects %j', (input, message) => {
    const result = RolloutSpec.safeParse(input);
    expect(result.success).toBe(false);
    expect(formatIssues(result.error!).join('\n')).toContain(message);
  });

  it.each(['img:latest', 'web:2', `registry.example/acme/web@sha256:${'a'.repeat(64)}`])(
    'takes %s as a rollout image: a tag (short names too, as Podman resolves them) or a digest',
    (image) => {
      expect(
        RolloutSpec.safeParse({ service: 'web', image, targets: { groups: ['g'] } }).success,
      ).toBe(true);
    },
  );

  it('resolves counts and percentages, rounding a percentage up', () => {
    expect(resolveCount(5, 3)).toBe(3);
    expect(resolveCount('10%', 95)).toBe(10);
    expect(resolveCount('1%', 10)).toBe(1);
    expect(resolveCount('100%', 7)).toBe(7);
  });
});
