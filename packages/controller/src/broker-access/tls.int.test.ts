import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker as connectAgentBroker } from '../../../agent/src/session/broker-client.js';
import { connectBroker, type BrokerSession } from '../mqtt/connect.js';
import { ConfigError } from '../serve/config.js';
import { makePrivateCa, type PrivateCa } from './private-ca.js';
import { freePort, startManagedMosquitto, type ManagedMosquitto } from './testing.js';
import { brokerTlsOptions } from './tls-options.js';
import { signalReload } from './mosquitto-access.js';
import { mosquittoPasswordHash } from './mosquitto-password.js';
import { renderPasswordFile, replaceFile } from './password-file.js';

// The controller's broker connection over TLS with a private CA, against a real Mosquitto whose
// TLS listener uses a certificate that CA signed (made here with openssl).
describe('the controller’s broker connection over TLS with a private CA', () => {
  let broker: ManagedMosquitto;
  let other: PrivateCa;
  let tlsPort: number;
  let otherDir: string;
  const sessions: BrokerSession[] = [];
  const login = { username: 'podfleet-controller', password: 'controller-secret' };

  beforeAll(async () => {
    tlsPort = await freePort();
    broker = await startManagedMosquitto((dir, listener) => {
      const ca = makePrivateCa(dir);
      return [
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${ca.caFile}`,
        `certfile ${ca.certFile}`,
        `keyfile ${ca.keyFile}`,
        listener.devices,
      ].join('\n');
    });
    const account = { username: login.username, hash: mosquittoPasswordHash(login.password) };
    await replaceFile(broker.passwordFile, renderPasswordFile([account]));
    await signalReload(broker.pidFile)();
    otherDir = await mkdtemp(join(tmpdir(), 'podfleet-other-ca-'));
    other = makePrivateCa(otherDir, 'someone else');
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.client.endAsync(true)));
    await broker?.stop();
    await rm(otherDir, { recursive: true, force: true });
  });

  const url = () => `mqtts://127.0.0.1:${tlsPort}`;
  const connect = async (env: Record<string, string>) => {
    const session = await connectBroker(url(), {
      ...login,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...brokerTlsOptions({ MQTT_URL: url(), ...env }),
    });
    sessions.push(session);
    return session;
  };

  it('connects when given the CA that signed the broker’s certificate', async () => {
    const session = await connect({ PODFLEET_MQTT_CA_FILE: join(broker.dir, 'ca.crt') });
    expect(session.client.connected).toBe(true);
    await session.client.publishAsync('pf/v1/dev/x/desired', 'over tls', { qos: 1 });
  });

  it('refuses the broker without the CA, or with another CA', async () => {
    await expect(connect({})).rejects.toThrow(/self[- ]signed certificate|unable to verify/);
    await expect(connect({ PODFLEET_MQTT_CA_FILE: other.caFile })).rejects.toThrow(
      /self[- ]signed certificate|unable to verify|certificate/,
    );
  });

  // The agent builds its own TLS socket for MQTT.js (agent/src/session/broker-client.ts): the
  // same broker, the CA from a device's config, and no CA.
  it('connects a device agent’s client with its configured CA, and refuses it without', async () => {
    const agentConnect = (ca?: Buffer) =>
      new Promise<void>((resolve, reject) => {
        const client = connectAgentBroker(url(), {
          ...login,
          reconnectPeriod: 0,
          connectTimeout: 5000,
          ...(ca ? { ca } : {}),
        });
        client.once('connect', () => void client.endAsync(true).then(resolve));
        client.once('error', (error) => {
          client.end(true);
          reject(error);
        });
      });
    await agentConnect(await readFile(join(broker.dir, 'ca.crt')));
    await expect(agentConnect()).rejects.toThrow(/self[- ]signed certificate|unable to verify/);
    await expect(agentConnect(await readFile(other.caFile))).rejects.toThrow(
      /self[- ]signed certificate|unable to verify|certificate/,
    );
  });

  it('names the variable when a file is missing or TLS is not asked for', () => {
    expect(() =>
      brokerTlsOptions({ MQTT_URL: url(), PODFLEET_MQTT_CA_FILE: '/nonexistent/ca.crt' }),
    ).toThrow(new ConfigError(['PODFLEET_MQTT_CA_FILE: cannot read /nonexistent/ca.crt (ENOENT)']));
    expect(() =>
      brokerTlsOptions({ MQTT_URL: broker.url, PODFLEET_MQTT_CA_FILE: other.caFile }),
    ).toThrow('PODFLEET_MQTT_CA_FILE: needs MQTT_URL mqtts:// or wss:// (TLS)');
  });
});
