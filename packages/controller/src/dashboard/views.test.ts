import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dashboardAssetsDir } from './plugin.js';

interface ViewNode {
  tag: string;
  attrs: Record<string, unknown>;
  children: (ViewNode | string)[];
}
type View = (...args: unknown[]) => ViewNode;

/** The page's own ES modules, imported in Node as the browser runs them. */
async function browserModule<T>(name: string): Promise<T> {
  return (await import(pathToFileURL(join(dashboardAssetsDir, 'js', name)).href)) as T;
}

const { h, mount } = await browserModule<{
  h: (tag: string, attrs?: Record<string, unknown>, ...children: unknown[]) => ViewNode;
  mount: (node: ViewNode | string, doc: FakeDocument) => FakeNode;
}>('view-node.js');
const { devicesView } = await browserModule<{ devicesView: View }>('devices.js');
const { rolloutsView, progressBar } = await browserModule<{
  rolloutsView: View;
  progressBar: View;
}>('rollouts.js');
const { eventsView } = await browserModule<{ eventsView: View }>('events.js');

const texts = (node: ViewNode | string): string[] =>
  typeof node === 'string' ? [node] : node.children.flatMap(texts);
const elements = (node: ViewNode | string): ViewNode[] =>
  typeof node === 'string' ? [] : [node, ...node.children.flatMap(elements)];

/** Just enough of the DOM to see what `mount` asks of it. */
class FakeNode {
  readonly children: FakeNode[] = [];
  readonly attributes = new Map<string, string>();
  readonly style = { setProperty: (name: string, value: string) => this.styles.set(name, value) };
  readonly styles = new Map<string, string>();
  constructor(
    readonly tag: string | undefined,
    readonly text?: string,
  ) {}
  append(child: FakeNode) {
    this.children.push(child);
  }
  setAttribute(name: string, value: string) {
    this.attributes.set(name, value);
  }
}
class FakeDocument {
  readonly created: string[] = [];
  createElement(tag: string) {
    this.created.push(tag);
    return new FakeNode(tag);
  }
  createTextNode(text: string) {
    return new FakeNode(undefined, text);
  }
}

const MARKUP = '<img src=x onerror=alert(1)>';

const device = (id: string, online = true) => ({
  id,
  labels: { site: '"><script>alert(2)</script>' },
  online,
  lastSeen: '2026-01-01T00:00:00.000Z',
  agentVersion: '0.1.0',
  podmanVersion: '5.4.2',
  systemdVersion: '257',
  unitStyle: 'quadlet',
  desiredGeneration: 3,
  appliedGeneration: 2,
});

describe('dashboard views', () => {
  it('shows a device id full of markup as text: no element comes from data', () => {
    const view = devicesView({ items: [device(MARKUP)], nextCursor: null }, MARKUP, Date.now());
    expect(texts(view)).toContain(MARKUP);
    expect(texts(view)).toContain('site="><script>alert(2)</script>');
    expect(elements(view).map((e) => e.tag)).not.toContain('img');
    expect(elements(view).map((e) => e.tag)).not.toContain('script');

    const doc = new FakeDocument();
    const mounted = mount(view, doc);
    const all = (node: FakeNode): FakeNode[] => [node, ...node.children.flatMap(all)];
    expect(doc.created).not.toContain('img');
    expect(all(mounted).filter((node) => node.text === MARKUP)).toHaveLength(1);
    // The id also lands in an attribute (data-device), set as a value and never parsed.
    const button = all(mounted).find((node) => node.tag === 'button');
    expect(button?.attributes.get('data-device')).toBe(MARKUP);
    expect(button?.attributes.get('aria-pressed')).toBe('true');
  });

  it('refuses event handler attributes, whatever a view is handed', () => {
    expect(() => mount(h('span', { onclick: 'alert(1)' }), new FakeDocument())).toThrow(
      'onclick: event handler attributes are not allowed',
    );
  });

  it('shows markup in failure reasons and events as text', () => {
    const rollout = {
      summary: {
        id: 'r1',
        service: 'web',
        targetImage: 'registry.example/acme/web:2',
        state: 'running',
        createdBy: 'alice',
        createdAt: '2026-01-01T00:00:00.000Z',
      },
      status: status([batch(0, 'canary', [['d1', 'failed', MARKUP]])]),
      happenings: [`d1 failed: ${MARKUP}`],
    };
    const rollouts = rolloutsView([rollout], undefined);
    expect(texts(rollouts)).toContain(MARKUP);
    expect(texts(rollouts)).toContain(`d1 failed: ${MARKUP}`);
    const events = eventsView(MARKUP, [
      {
        id: 'e1',
        device: MARKUP,
        type: 'error',
        at: '2026-01-01T00:00:00.000Z',
        payload: { type: 'error', message: MARKUP },
      },
    ]);
    expect(texts(events).filter((text) => text === MARKUP)).toHaveLength(2);
    for (const view of [rollouts, events]) {
      expect(elements(view).map((e) => e.tag)).not.toContain('img');
    }
  });

  it('says how many failed devices the status leaves out of its list', () => {
    const s = status([batch(0, 'canary', [['d1', 'failed', 'not ready']])]);
    s.counts.failed = 130;
    const summary = {
      id: 'r1',
      service: 'web',
      targetImage: 'registry.example/acme/web:2',
      state: 'running',
      createdBy: 'alice',
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    const view = rolloutsView([{ summary, status: s, happenings: [] }], undefined);
    expect(texts(view).join('')).toContain('Failed devices (the first 1; 129 more)');
  });

  it('draws a batch as a bar of its finished states, said in words too', () => {
    const bar = progressBar(
      batch(1, 'batch', [
        ['a', 'succeeded'],
        ['b', 'succeeded'],
        ['c', 'failed', 'not ready'],
        ['d', 'updating'],
        ['e', 'pending'],
      ]),
    );
    const [track] = bar.children as ViewNode[];
    expect(track!.attrs['aria-label']).toBe(
      '3 of 5 finished: 2 succeeded, 1 failed, 1 updating, 1 pending',
    );
    expect(
      track!.children.map((s) => [(s as ViewNode).attrs.class, (s as ViewNode).attrs.style]),
    ).toEqual([
      ['segment succeeded', { width: '40%' }],
      ['segment failed', { width: '20%' }],
      ['segment updating', { width: '20%' }],
    ]);
    expect(texts(bar)).toEqual(['3/5']);
  });
});

type DeviceState = 'pending' | 'updating' | 'succeeded' | 'failed';

function batch(index: number, kind: 'canary' | 'batch', devices: [string, DeviceState, string?][]) {
  const counts = {
    pending: 0,
    updating: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    reverting: 0,
    reverted: 0,
    offline: 0,
  };
  for (const [, state] of devices) counts[state]++;
  return {
    index,
    kind,
    state: 'running',
    total: devices.length,
    counts,
    /** Not part of a batch's status: the failed ones become the status's failures. */
    devices: devices.map(([id, state, reason]) => ({
      id,
      state,
      from: 'a:1',
      to: 'a:2',
      online: true,
      ...(reason ? { reason } : {}),
    })),
  };
}

function status(batches: ReturnType<typeof batch>[]) {
  const counts = {
    pending: 0,
    updating: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    reverting: 0,
    reverted: 0,
    offline: 0,
    total: 0,
  };
  for (const b of batches) {
    for (const [state, count] of Object.entries(b.counts))
      counts[state as keyof typeof counts] += count;
    counts.total += b.total;
  }
  return {
    id: 'r1',
    service: 'web',
    targetImage: 'registry.example/acme/web:2',
    state: 'running',
    currentBatch: 0,
    awaitingApproval: false,
    createdBy: 'alice',
    createdAt: '2026-01-01T00:00:00.000Z',
    counts,
    batches: batches.map(({ devices: _devices, ...b }) => b),
    failures: batches.flatMap((b) =>
      b.devices.filter((d) => d.state === 'failed').map((d) => ({ ...d, batch: b.index })),
    ),
    excluded: [],
  };
}
