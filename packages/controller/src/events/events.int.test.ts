import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

interface Event {
  id: string;
  device: string;
  type: string;
  at: string;
}

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute));

describe('events', () => {
  let api: ApiHarness;
  const stored: { id: string; deviceId: string; type: string; at: Date; receivedAt: Date }[] = [];

  beforeAll(async () => {
    api = await openApiHarness();
    await api.prisma.device.createMany({ data: [{ id: 'pi-1' }, { id: 'pi-2' }] });
    // Three events share each receive time, so paging must order by (receivedAt, id), not the time
    // alone. pi-2's clock runs 73 years ahead: its events must not stay on top.
    for (let minute = 0; minute < 5; minute++) {
      for (const [deviceId, type] of [
        ['pi-1', 'apply'],
        ['pi-2', 'apply'],
        ['pi-1', 'rollback'],
      ] as const) {
        const deviceClock =
          deviceId === 'pi-2' ? new Date(Date.UTC(2099, 0, 1, 0, minute)) : at(minute);
        stored.push({ id: randomUUID(), deviceId, type, at: deviceClock, receivedAt: at(minute) });
      }
    }
    await api.prisma.deviceEvent.createMany({
      data: stored.map((event) => ({ ...event, payload: { type: event.type } })),
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  async function readAll(query: string, limit: number) {
    const seen: Event[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/events?limit=${limit}${query}${cursor ? `&cursor=${cursor}` : ''}`;
      const response = await api.call('viewer', 'GET', url);
      expect(response.statusCode).toBe(200);
      seen.push(...response.json().items);
      cursor = response.json().nextCursor;
      pages++;
    } while (cursor);
    return { seen, pages };
  }

  it('pages through every event newest received first, (receivedAt, id) descending, none twice, whatever the device clocks say', async () => {
    const { seen, pages } = await readAll('', 4);
    const expected = [...stored]
      .sort((a, b) => b.receivedAt.getTime() - a.receivedAt.getTime() || (a.id < b.id ? 1 : -1))
      .map((event) => event.id);
    expect(pages).toBe(4);
    expect(seen.map((event) => event.id)).toEqual(expected);
  });

  it('filters by device, type and a window of receive times (since inclusive, until exclusive)', async () => {
    const { seen } = await readAll(
      `&device=pi-1&type=rollback&since=${at(1).toISOString()}&until=${at(3).toISOString()}`,
      2,
    );
    expect(seen.map((event) => [event.device, event.type, event.at])).toEqual([
      ['pi-1', 'rollback', at(2).toISOString()],
      ['pi-1', 'rollback', at(1).toISOString()],
    ]);
  });

  it('answers 400 naming a bad filter, and never tells the fleet', async () => {
    const response = await api.call('viewer', 'GET', '/v1/events?since=yesterday');
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toBe('querystring.since: Invalid ISO datetime');
    const unknown = await api.call('viewer', 'GET', '/v1/events?devce=pi-1');
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toMatch(/^querystring: Unrecognized key: "devce"/);
    // A type no device reports would list nothing: a typo, refused with the types there are.
    for (const url of ['/v1/events?type=bogus', '/v1/devices/pi-1/events?type=rolback']) {
      const type = await api.call('viewer', 'GET', url);
      expect(type.statusCode).toBe(400);
      expect(type.json().message).toBe(
        'querystring.type: must be one of apply, auto-update, rollback, drift, error',
      );
    }
    expect(api.fleet.take()).toEqual([]);
  });
});
