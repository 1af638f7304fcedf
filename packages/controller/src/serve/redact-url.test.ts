import { describe, expect, it } from 'vitest';
import { redactUrl } from './redact-url.js';

describe('redactUrl', () => {
  it('hides the password of a broker or database URL, keeping where it points', () => {
    expect(redactUrl('mqtt://podfleet-controller:s3cr%40t@broker:1883')).toBe(
      'mqtt://podfleet-controller:***@broker:1883',
    );
    expect(redactUrl('mqtts://:only-a-password@broker')).toBe('mqtts://:***@broker');
    expect(redactUrl('postgres://app:pw@db:5432/fleet?sslmode=require')).toBe(
      'postgres://app:***@db:5432/fleet?sslmode=require',
    );
  });

  it('hides query parameters that carry a secret', () => {
    expect(redactUrl('postgres://db/fleet?password=pw&sslpassword=k&application_name=pf')).toBe(
      'postgres://db/fleet?password=***&sslpassword=***&application_name=pf',
    );
  });

  it('returns a URL without secrets as given, and hides the user part of one it cannot parse', () => {
    expect(redactUrl('ws://broker:80/mqtt')).toBe('ws://broker:80/mqtt');
    expect(redactUrl('mqtt://device@broker:1883')).toBe('mqtt://device@broker:1883');
    expect(redactUrl('mqtt://u:p w@[bad')).toBe('mqtt://***@[bad');
  });
});
