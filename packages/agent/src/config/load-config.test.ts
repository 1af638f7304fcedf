import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey } from '@podfleet/shared';
import { loadAgentConfig, parseAgentConfig } from './load-config.js';

const key = generateSigningKey();
const rotated = generateSigningKey();
const indent = (pem: string) => pem.trim().replace(/\n/g, '\n    ');

const minimal = `
device: edge-berlin-042
broker:
  url: mqtts://broker.example:8883
controller:
  publicKeys: |
    ${indent(key.publicKeyPem)}
`;

const bad = (text: string) => () => parseAgentConfig(text, 'agent.yaml');

describe('parseAgentConfig', () => {
  it('fills the defaults an operator expects', () => {
    expect(parseAgentConfig(minimal, 'agent.yaml')).toEqual({
      device: 'edge-berlin-042',
      broker: { url: 'mqtts://broker.example:8883', keepalive: 30, sessionExpiry: 86_400 },
      controller: { publicKeys: [`${key.publicKeyPem.trim()}\n`] },
      scope: 'system',
      stateDir: '/var/lib/podfleet',
      autoUpdate: { schedule: 86_400 },
      reportInterval: 60,
      driftInterval: 300,
      logLevel: 'info',
      podman: '/usr/bin/podman',
    });
  });

  it('reads every field: two keys while rotating, durations, off, user scope', () => {
    const config = parseAgentConfig(
      `
device: dev-1
broker: { url: "mqtt://10.0.0.1", username: fleet-dev-1, password: s3cret, keepalive: 1m, sessionExpiry: 72h }
controller:
  publicKeys:
    - |
      ${key.publicKeyPem.trim().replace(/\n/g, '\n      ')}
    - |
      ${rotated.publicKeyPem.trim().replace(/\n/g, '\n      ')}
scope: user
stateDir: /home/pi/.local/state/podfleet
autoUpdate: { schedule: "off" }
settle: 30s
reportInterval: 10s
driftInterval: 1m30s
logLevel: debug
podman: /usr/local/bin/podman
`,
      'agent.yaml',
    );
    expect(config).toMatchObject({
      broker: {
        username: 'fleet-dev-1',
        password: 's3cret',
        keepalive: 60,
        sessionExpiry: 259_200,
      },
      scope: 'user',
      autoUpdate: { schedule: 'off' },
      settle: 30,
      reportInterval: 10,
      driftInterval: 90,
      logLevel: 'debug',
    });
    expect(config.controller.publicKeys).toHaveLength(2);
    const hourly = parseAgentConfig(`${minimal}autoUpdate: { schedule: 1h }\n`, 'agent.yaml');
    expect(hourly.autoUpdate.schedule).toBe(3600);
  });

  it('names the file and the field, on one line', () => {
    expect(bad(minimal.replace('mqtts://broker.example:8883', 'http://broker'))).toThrow(
      'agent.yaml: broker.url: must be mqtt://, mqtts://, ws:// or wss://HOST[:PORT], not "http://broker"',
    );
    expect(bad(minimal.replace('edge-berlin-042', 'edge/berlin'))).toThrow(
      /^agent\.yaml: device: must match /,
    );
    expect(bad(`${minimal}autoUpdate: { schedule: sometimes }\n`)).toThrow(
      /^agent\.yaml: autoUpdate\.schedule: /,
    );
    expect(bad(`${minimal}scope: root\n`)).toThrow(/^agent\.yaml: scope: /);
    expect(bad(`${minimal}stateDir: var/lib\n`)).toThrow(
      'agent.yaml: stateDir: must be an absolute path',
    );
    expect(bad(`${minimal}brokr: {}\n`)).toThrow(
      /^agent\.yaml: \(root\): Unrecognized key: "brokr"/,
    );
    expect(bad(minimal.replace(/publicKeys: \|[\s\S]*$/, 'publicKeys: "not a key"\n'))).toThrow(
      'agent.yaml: controller.publicKeys: not an Ed25519 public key in PEM form',
    );
    const both = minimal.replace(
      'url: mqtts://broker.example:8883',
      'url: mqtt://b\n  password: x\n  passwordFile: /etc/podfleet/pw',
    );
    expect(bad(both)).toThrow(
      'agent.yaml: broker.passwordFile: set password or passwordFile, not both',
    );
    expect(bad('device: [\n')).toThrow(/^agent\.yaml: line \d+, column \d+: /);
    expect(bad('device: a\ndevice: b\n')).toThrow(
      'agent.yaml: line 2, column 1: Map keys must be unique',
    );
    expect(() => parseAgentConfig('', 'agent.yaml')).toThrow(/device: /);
    for (const text of [minimal.replace('mqtts://broker.example:8883', 'nope'), 'device: [\n']) {
      expect(bad(text)).toThrow(/^[^\n]+$/);
    }
  });
});

describe('loadAgentConfig', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'podfleet-config-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('reads the password from passwordFile (its first line)', async () => {
    const passwordFile = join(directory, 'password');
    await writeFile(passwordFile, 'hunter2\n');
    const path = join(directory, 'agent.yaml');
    await writeFile(
      path,
      minimal.replace(
        'url: mqtts://broker.example:8883',
        `url: mqtt://b\n  passwordFile: ${passwordFile}`,
      ),
    );
    const loaded = await loadAgentConfig(path);
    expect(loaded.password).toBe('hunter2');
    expect(loaded.ca).toBeUndefined();
  });

  it('says which file could not be read', async () => {
    const path = join(directory, 'agent.yaml');
    await expect(loadAgentConfig(path)).rejects.toThrow(`${path}: cannot read (ENOENT)`);
    await writeFile(
      path,
      minimal.replace(
        'url: mqtts://broker.example:8883',
        `url: mqtt://b\n  caFile: /nonexistent/ca.pem`,
      ),
    );
    await expect(loadAgentConfig(path)).rejects.toThrow(
      `${path}: broker.caFile: cannot read /nonexistent/ca.pem (ENOENT)`,
    );
  });
});
