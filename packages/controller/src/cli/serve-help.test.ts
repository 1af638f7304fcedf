import { describe, expect, it } from 'vitest';
import { ServeConfig, readServeConfig } from '../serve/config.js';
import { SERVE_ENVIRONMENT } from '../serve/environment.js';
import { runCliCaptured } from './testing.js';

describe('serve --help: the environment serve reads', () => {
  it('describes exactly the variables config.ts reads', () => {
    expect(Object.keys(SERVE_ENVIRONMENT).sort()).toEqual(Object.keys(ServeConfig.shape).sort());
  });

  it('prints every one of them, each on its own line with its meaning', async () => {
    const { code, stdout, stderr } = await runCliCaptured(['serve', '--help']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    for (const [name, meaning] of Object.entries(SERVE_ENVIRONMENT)) {
      const line = stdout.split('\n').find((text) => text.startsWith(`  ${name} `));
      expect(line?.trim().replace(/ +/, ' ')).toBe(`${name} ${meaning}`);
    }
  });

  it('keeps PODFLEET_SIGNING_KEY_CHAIN for the signing key (it was dropped when parsed)', () => {
    const config = readServeConfig({
      PODFLEET_SIGNING_KEY: 'pem',
      PODFLEET_SIGNING_KEY_CHAIN: '[]',
    });
    expect(config).toMatchObject({ PODFLEET_SIGNING_KEY: 'pem', PODFLEET_SIGNING_KEY_CHAIN: '[]' });
  });
});
