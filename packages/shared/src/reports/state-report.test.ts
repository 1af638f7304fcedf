import { describe, expect, it } from 'vitest';
import { formatIssues } from '../spec/text.js';
import { ServiceState } from './state-report.js';

const web = {
  name: 'web',
  image: 'registry.example/web:1',
  unit: { active: 'active', sub: 'running', restarts: 0 },
  ready: true,
};

describe('ServiceState.unit.activeSince', () => {
  it('is optional: reports of agents that do not send it still parse', () => {
    expect(ServiceState.parse(web).unit).toEqual({ active: 'active', sub: 'running', restarts: 0 });
  });

  it('carries when the unit last entered active, as an ISO time', () => {
    const unit = { ...web.unit, restarts: 1, activeSince: '2026-11-29T08:00:05.123Z' };
    expect(ServiceState.parse({ ...web, unit }).unit.activeSince).toBe('2026-11-29T08:00:05.123Z');
  });

  it('refuses a time that is not ISO, naming the field', () => {
    const unit = { ...web.unit, activeSince: 'Sun 2026-11-29 08:00:05 UTC' };
    const parsed = ServiceState.safeParse({ ...web, unit });
    expect(parsed.success ? [] : formatIssues(parsed.error)).toEqual([
      expect.stringMatching(/^unit\.activeSince: /),
    ]);
  });
});
