import { describe, expect, it } from 'vitest';
import { RolloutStrategy } from '@podfleet/shared';
import { batchForecast } from './forecast.js';
import { batchKinds, effectiveSettings } from './settings.js';

const settingsOf = (strategy: Record<string, unknown>, batches = 3) => {
  const parsed = RolloutStrategy.parse(strategy);
  return effectiveSettings(parsed, batchKinds(batches, parsed.canary));
};

describe('batch forecast for rollout plan', () => {
  const monday1200 = Date.parse('2026-11-30T12:00:00Z');

  it('says when the windows of a batch spanning two time zones let its first and last device start', () => {
    const settings = settingsOf({
      policy: {
        windows: [
          { match: { site: 'berlin' }, schedule: 'Mon-Fri 01:00-05:00', timeZone: 'Europe/Berlin' },
          { match: { site: 'nyc' }, schedule: 'Mon-Fri 01:00-05:00', timeZone: 'America/New_York' },
        ],
      },
    });
    expect(batchForecast(1, [{ site: 'berlin' }, { site: 'nyc' }], settings, monday1200)).toEqual([
      'its windows let the first device start at 2026-12-01T01:00+01:00, the last at 2026-12-01T01:00-05:00',
    ]);
  });

  it('names the approval and the bake a batch waits for, and devices whose window never opens', () => {
    const settings = settingsOf({
      canary: 1,
      policy: {
        approval: { after: ['canary'] },
        bakeBetweenBatches: '10m',
        windows: [{ match: { site: 'x' }, schedule: 'Mon 01:00-02:00', timeZone: 'UTC' }],
      },
    });
    expect(batchForecast(1, [{ site: 'y' }, { site: 'x' }], settings, monday1200)).toEqual([
      "waits for an operator's approval after batch 0",
      'starts 600s after batch 0 succeeded',
      'its windows let the first device start now, the last at 2026-12-07T01:00+00:00',
    ]);
    expect(batchForecast(0, [], settingsOf({}), monday1200)).toEqual([]);
  });
});
