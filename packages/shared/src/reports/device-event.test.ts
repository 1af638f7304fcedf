import { describe, expect, it } from 'vitest';
import { formatIssues } from '../spec/text.js';
import { DeviceEvent } from './device-event.js';

const header = {
  id: '6f1c1f0e-4a4b-4c1e-9a43-0d6f5b0c2a10',
  device: 'dev-1',
  at: '2026-11-29T08:00:00.000Z',
};
const rollback = {
  ...header,
  type: 'rollback',
  service: 'web',
  generation: 2,
  trigger: 'apply',
  fromImage: 'registry.example/web:2',
  toImage: 'registry.example/web:1',
  reason: 'web.service restarted 1 time(s) (result: exit-code)',
  restored: true,
};
const failed = {
  ...header,
  type: 'apply',
  generation: 2,
  result: 'failed',
  services: [{ name: 'web', image: 'registry.example/web:1', action: 'rolled back' }],
  reason: 'web: web.service restarted 1 time(s) (result: exit-code)',
};
const crash = {
  reason: 'crashed-after-start',
  unit: 'web.service',
  detail: 'web.service restarted 1 time(s) (result: exit-code)',
  journal: ['Started web.service.', 'Main process exited, status=1'],
};

function problems(input: unknown): string[] {
  const parsed = DeviceEvent.safeParse(input);
  return parsed.success ? [] : formatIssues(parsed.error);
}

describe('DeviceEvent failures', () => {
  it('parses apply and rollback events of agents that send no failure', () => {
    expect(DeviceEvent.parse(rollback)).toEqual(rollback);
    expect(DeviceEvent.parse(failed)).toEqual(failed);
    const rejected = { ...header, type: 'apply', generation: 3, result: 'rejected', reason: 'x' };
    expect(DeviceEvent.parse(rejected)).toEqual({ ...rejected, services: [] });
  });

  it('carries a structured failure on a rollback and a failed or rejected apply', () => {
    expect(DeviceEvent.parse({ ...rollback, failure: crash })).toMatchObject({ failure: crash });
    expect(DeviceEvent.parse({ ...failed, failure: crash })).toMatchObject({ failure: crash });
    const rejected = { ...header, type: 'apply', generation: 3, result: 'rejected' };
    // The journal defaults to none: a rejected manifest never reached a unit.
    expect(
      DeviceEvent.parse({ ...rejected, failure: { reason: 'rejected-manifest' } }),
    ).toMatchObject({ failure: { reason: 'rejected-manifest', journal: [] } });
  });

  it('refuses a reason the policy does not know, naming the field', () => {
    expect(problems({ ...rollback, failure: { ...crash, reason: 'exploded' } })).toEqual([
      expect.stringMatching(/^failure\.reason: /),
    ]);
    expect(problems({ ...failed, failure: { ...crash, reason: 'exploded' } })).toEqual([
      expect.stringMatching(/^failure\.reason: /),
    ]);
  });

  it('refuses more than 50 journal lines, unknown failure fields, and a failure on a success', () => {
    const journal = Array.from({ length: 51 }, (_, i) => `line ${i}`);
    expect(problems({ ...rollback, failure: { ...crash, journal } })).toEqual([
      expect.stringMatching(/^failure\.journal: /),
    ]);
    expect(problems({ ...rollback, failure: { ...crash, exitCode: 1 } })).toEqual([
      expect.stringMatching(/^failure: .*exitCode/),
    ]);
    const applied = { ...failed, result: 'applied', reason: undefined };
    expect(problems({ ...applied, failure: crash })).toEqual([
      'failure: only a failed or rejected apply carries a failure',
    ]);
  });
});
