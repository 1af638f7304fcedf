import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '@podfleet/shared';
import { runCliCaptured } from '../cli/testing.js';
import { openApiHarness, type ApiHarness, type StoreKind } from '../http/route-testing.js';
import { sessionRunner, type SessionRunner } from '../serve/sessions.js';
import { DeviceIngest } from './device-ingest.js';
import { QUARANTINE_KEEP_PER_DEVICE } from './quarantine.js';

describe.each<StoreKind>(['postgres', 'embedded'])('quarantine on the %s store', (store) => {
  let api: ApiHarness;
  let sessions: SessionRunner;
  let ingest: DeviceIngest;

  beforeAll(async () => {
    api = await openApiHarness({ store });
    await api.prisma.device.createMany({ data: [{ id: 'pi-1' }, { id: 'pi-2' }] });
    sessions = sessionRunner(api.db, api.databaseUrl);
    ingest = new DeviceIngest({
      journalDir: mkdtempSync(join(tmpdir(), 'pf-quarantine-')),
      withSession: sessions.run,
      log: pino({ level: 'silent' }),
      maxDelayMs: 1,
      // Every refusal written, so that the cap on rows is what limits them here.
      quarantine: { perMinute: 1000, muteAfter: 1000 },
    });
    await ingest.replay();
  });
  afterAll(async () => {
    await ingest?.close();
    await sessions?.close();
    await api?.close();
  });

  it('lists what ingest refused, newest first, per device, paged, and the CLI shows it', async () => {
    ingest.receive(topics.state('pi-1'), Buffer.from('{"device":"pi-1","generation":3000000000}'));
    ingest.receive(topics.events('pi-2'), Buffer.from('not json \u001b[2J'));
    ingest.receive(
      topics.events('pi-1'),
      Buffer.from(
        JSON.stringify({
          id: randomUUID(),
          device: 'pi-1',
          at: '2026-01-01T00:00:00Z',
          type: 'error',
          message: 'ok',
        }),
      ),
    );
    await ingest.drain();

    const all = await api.call('viewer', 'GET', '/v1/quarantine?limit=1');
    expect(all.statusCode).toBe(200);
    expect(all.json().items).toHaveLength(1);
    expect(all.json().items[0]).toMatchObject({ device: 'pi-2', reason: 'events: not JSON' });
    const next = await api.call(
      'viewer',
      'GET',
      `/v1/quarantine?limit=1&cursor=${all.json().nextCursor}`,
    );
    expect(next.json().items[0].device).toBe('pi-1');
    expect(next.json().items[0].reason).toMatch(/^state: generation: Too big/);
    expect(next.json().nextCursor).toBeNull();
    const mine = await api.call('viewer', 'GET', '/v1/quarantine?device=pi-1');
    expect(mine.json().items.map((item: { device: string }) => item.device)).toEqual(['pi-1']);
    expect(await api.prisma.deviceEvent.count({ where: { deviceId: 'pi-1' } })).toBe(1);

    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    const cli = await runCliCaptured(['quarantine', '--url', url, '--token', api.tokens.viewer]);
    expect(cli.code).toBe(0);
    const lines = cli.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^RECEIVED\s+DEVICE\s+TOPIC\s+BYTES\s+REASON$/);
    expect(lines[1]).toMatch(/pi-2\s+pf\/v1\/dev\/pi-2\/events\s+13\s+events: not JSON$/);
    expect(lines).toHaveLength(3);
  });

  it('keeps at most the newest rows of a device however much it sends', async () => {
    for (let n = 0; n < QUARANTINE_KEEP_PER_DEVICE + 20; n++) {
      ingest.receive(topics.state('pi-2'), Buffer.from(`junk ${n}`));
    }
    await ingest.drain();
    const rows = await api.prisma.quarantinedMessage.findMany({
      where: { deviceId: 'pi-2' },
      orderBy: { id: 'desc' },
    });
    expect(rows).toHaveLength(QUARANTINE_KEEP_PER_DEVICE);
    expect(rows[0]!.excerpt).toBe(`junk ${QUARANTINE_KEEP_PER_DEVICE + 19}`);
  });
});
