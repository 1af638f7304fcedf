import { describe, expect, it } from 'vitest';
import {
  DeviceEvent,
  endorseKey,
  generateSigningKey,
  signManifest,
  topics,
} from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import { MemoryHost } from '../host/memory-host.js';
import { Outbox } from '../outbox/outbox.js';
import { MemoryOutboxStore } from '../outbox/outbox-store.js';
import { MemoryLink } from '../session/memory-link.js';
import { MemoryStateStore } from '../state/state-store.js';
import { DeviceAgent } from './device-agent.js';

const k1 = generateSigningKey();
const k2 = generateSigningKey();
const chain = [endorseKey(k2.publicKeyPem, k1.privateKeyPem)];
const IMAGE = 'registry.example/acme/web:1';
const manifest = (generation: number, key = k1, endorsements: typeof chain = []) =>
  JSON.stringify(
    signManifest(
      {
        device: 'dev-1',
        generation,
        issuedAt: '2026-01-01T00:00:00.000Z',
        services: [{ name: 'web', image: IMAGE, ready: { timeout: 30, settle: 10 } }],
      },
      key.privateKeyPem,
      endorsements,
    ),
  );

describe('an agent following a controller key rotation', () => {
  it('trusts the new key alone once announced, and keeps that across a restart', async () => {
    const clock = new VirtualClock();
    const host = new MemoryHost({ clock, name: 'dev-1' });
    host.images.push(IMAGE);
    const store = new MemoryStateStore();
    const link = new MemoryLink('dev-1');
    const outboxStore = new MemoryOutboxStore();
    let agent: DeviceAgent;
    const boot = async () => {
      const outbox = new Outbox(outboxStore, link);
      agent = new DeviceAgent({
        device: 'dev-1',
        trustedKeys: [k1.publicKeyPem],
        driver: host,
        store,
        link,
        outbox,
        clock,
        intervals: {
          reportMs: 3_600_000,
          driftMs: 3_600_000,
          autoUpdateMs: undefined,
        },
      });
      await outbox.open();
      await agent.start();
      link.connect();
      await clock.run(agent.idle());
      return outbox;
    };
    const desire = async (payload: string) => {
      link.deliverDesired(payload);
      await clock.run(agent.idle());
    };
    const results = () =>
      link
        .published(topics.events('dev-1'))
        .map((e) => DeviceEvent.parse(e))
        .filter((e) => e.type === 'apply')
        .map(
          (e) =>
            `${e.generation} ${e.result}${e.type === 'apply' && e.reason ? `: ${e.reason}` : ''}`,
        );
    let outbox = await boot();
    await desire(manifest(1));
    await desire(manifest(2, k2, chain));
    expect(await store.loadTrustedKeys()).toEqual([chain[0]!.publicKey]);
    await desire(manifest(3, k1));
    await desire(manifest(1, k2, chain));
    agent!.stop();
    outbox.close();
    link.disconnect();
    outbox = await boot();
    await desire(manifest(4, k1));
    await desire(manifest(4, k2));
    expect(results()).toEqual([
      '1 applied',
      '2 applied',
      `3 rejected: signed by unknown key ${k1.keyId}`,
      '1 rejected: generation 1 is not newer than applied generation 2',
      `4 rejected: signed by unknown key ${k1.keyId}`,
      '4 applied',
    ]);
  });
});
