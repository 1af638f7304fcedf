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
  compliance: { state: 'updating', services: [] },
});

describe('the devices view', () => {
  it('counts devices per compliance state, worst first, and says why one is failed', () => {
    const failed = {
      ...device('sim-0031'),
      appliedGeneration: 3,
      compliance: {
        state: 'failed',
        services: [
          {
            service: 'web',
            state: 'failed',
            desired: 'web:1.8',
            running: 'web:1.4',
            failure: { reason: 'start-timeout', detail: 'not ready in 20s' },
          },
        ],
      },
    };
    const synced = {
      ...device('sim-0001'),
      compliance: { state: 'in-sync', services: [] },
    };
    const view = devicesView(
      { items: [synced, failed, { ...synced, id: 'sim-0002' }], nextCursor: null },
      undefined,
      Date.now(),
    );
    const text = texts(view).join('');
    expect(text).toContain('3 online, 0 offline; 1 failed, 2 in-sync');
    expect(text).toContain('web: start-timeout — runs web:1.4, asked web:1.8');
    expect(text).not.toContain('behind');
  });
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

  it('shows controls and bidi overrides a device sent as escapes, in text and tooltips', () => {
    const doc = new FakeDocument();
    const mounted = mount(
      h(
        'td',
        { title: 'at \u202e71', 'data-device': 'pi-1' },
        'pi-\u202e71-ip\x1b[2J\x9b',
        'a\tb\nc',
      ),
      doc,
    );
    expect(mounted.children.map((node) => node.text)).toEqual([
      'pi-\\u202e71-ip\\x1b[2J\\u009b',
      'a\tb\nc',
    ]);
    expect(mounted.attributes.get('title')).toBe('at \\u202e71');
    expect(mounted.attributes.get('data-device')).toBe('pi-1');
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

describe('rollout views: what holds devices, deferred devices, failures, approval', () => {
  const summary = {
    id: 'r1',
    service: 'web',
    targetImage: 'registry.example/acme/web:2',
    state: 'running',
    createdBy: 'alice',
    createdAt: '2026-01-01T00:00:00.000Z',
  };
  const view = (s: ReturnType<typeof status>, approval?: { busy: boolean; error?: string }) =>
    rolloutsView([{ summary, status: s, happenings: [], approval }], undefined);
  const byClass = (node: ViewNode, name: string) =>
    elements(node).filter((e) =>
      String(e.attrs.class ?? '')
        .split(' ')
        .includes(name),
    );
  /** The element whose accessible name is `label`, through aria-labelledby. */
  const labelled = (node: ViewNode, label: string) => {
    const title = elements(node).find((e) => texts(e).join('') === label && e.attrs.id);
    return elements(node).find((e) => title && e.attrs['aria-labelledby'] === title.attrs.id);
  };

  it('lists why devices wait under the batches, and nothing when none waits', () => {
    const s = status([
      batch(0, 'canary', [['d1', 'succeeded']]),
      batch(1, 'batch', [
        ['d2', 'pending'],
        ['d3', 'pending'],
      ]),
    ]);
    expect(labelled(view(s), 'Why devices wait')).toBeUndefined();
    expect(byClass(view(s), 'waiting')).toEqual([]);

    s.waiting = [
      '2 devices: budget of group site=berlin full: 2 of 4 updating or failed, maxUnavailable 2',
      `1 device: ${MARKUP}`,
    ];
    const shown = view(s);
    const list = labelled(shown, 'Why devices wait');
    expect(list?.tag).toBe('ul');
    expect(list!.children.map((li) => texts(li).join(''))).toEqual(s.waiting);
    // Below the batch table, above the failed devices.
    const order = elements(shown).map((e) => e.attrs.class);
    expect(order.indexOf('waiting')).toBeGreaterThan(order.indexOf('batches'));
    expect(elements(shown).map((e) => e.tag)).not.toContain('img');
  });

  it('counts deferred devices as not done: in the bar, its words, the totals and a column', () => {
    const b = batch(1, 'batch', [
      ['a', 'succeeded'],
      ['b', 'deferred'],
      ['c', 'deferred'],
      ['d', 'pending'],
    ]);
    const bar = progressBar(b);
    const [track] = bar.children as ViewNode[];
    expect(track!.attrs['aria-label']).toBe('1 of 4 finished: 1 succeeded, 2 deferred, 1 pending');
    expect(track!.children.map((s) => (s as ViewNode).attrs.class)).toEqual([
      'segment succeeded',
      'segment deferred',
    ]);
    expect(texts(bar)).toEqual(['1/4']);

    const shown = view(status([batch(0, 'canary', [['x', 'succeeded']]), b]));
    expect(texts(byClass(shown, 'totals')[0]!).join('')).toBe(
      '2 of 5 devices succeeded, 0 failed, 1 waiting (0 offline), 2 deferred until they return',
    );
    const head = elements(shown).filter((e) => e.tag === 'th' && e.attrs.scope === 'col');
    expect(head.map((th) => texts(th).join(''))).toContain('Deferred');
    const cells = elements(shown).filter((e) => e.attrs['data-count'] === 'deferred');
    expect(cells.map((td) => texts(td).join(''))).toEqual(['0', '2']);
    // Without a deferred device the column stays away, as skipped and reverted do.
    const plain = view(status([batch(0, 'canary', [['x', 'succeeded']])]));
    expect(elements(plain).some((e) => e.attrs['data-count'] === 'deferred')).toBe(false);
    expect(texts(byClass(plain, 'totals')[0]!).join('')).not.toContain('deferred');
  });

  it('shows a failed device’s failure and unit before its reason, the journal folded away', () => {
    const s = status([
      batch(0, 'canary', [
        ['d1', 'failed', 'web: not ready within 60s'],
        ['d2', 'failed', 'no previous version'],
      ]),
    ]);
    s.failures[0]!.failure = {
      reason: 'crashed-after-start',
      unit: 'web.service',
      journal: ['web[41]: listening on :8080', `web[41]: panic: ${MARKUP}`],
    };
    s.failures[1]!.failure = { reason: 'pull-failed', journal: [] };
    const shown = view(s);
    const failed = elements(shown).find((e) => e.attrs.class === 'failed')!;
    const head = elements(failed).filter((e) => e.tag === 'th' && e.attrs.scope === 'col');
    expect(head.map((th) => texts(th).join(''))).toEqual(['Device', 'Batch', 'Failure', 'Reason']);
    const rows = elements(failed)
      .filter((e) => e.tag === 'tr')
      .slice(1);
    const cells = (row: ViewNode) =>
      row.children.map((cell) => texts(cell).join('')).slice(2) as string[];
    expect(cells(rows[0]!)).toEqual([
      'crashed-after-startweb.service',
      `web: not ready within 60sJournal of web.service: last 2 lines` +
        `web[41]: listening on :8080\nweb[41]: panic: ${MARKUP}`,
    ]);
    expect(cells(rows[1]!)).toEqual(['pull-failed', 'no previous version']);

    const [journal] = elements(rows[0]!).filter((e) => e.tag === 'details');
    expect(journal!.attrs.open).toBeUndefined();
    expect(journal!.attrs['data-keep-open']).toBe('journal-r1-d1');
    expect(journal!.children.map((c) => (c as ViewNode).tag)).toEqual(['summary', 'pre']);
    expect(elements(rows[1]!).some((e) => e.tag === 'details')).toBe(false);
    expect(elements(shown).map((e) => e.tag)).not.toContain('img');

    // A failure the controller recorded without structure still shows its reason.
    delete s.failures[1]!.failure;
    const unstructured = elements(view(s)).find((e) => e.attrs.class === 'failed')!;
    const last = elements(unstructured)
      .filter((e) => e.tag === 'tr')
      .at(-1)!;
    expect(cells(last)).toEqual(['—', 'no previous version']);

    // One an operator resumed over says so beside its reason.
    s.failures[1]!.accepted = true;
    const accepted = elements(view(s)).find((e) => e.attrs.class === 'failed')!;
    const row = elements(accepted)
      .filter((e) => e.tag === 'tr')
      .at(-1)!;
    expect(cells(row)).toEqual(['—', 'no previous version (accepted on resume)']);
  });

  it('offers "Approve batch N" only while an approval holds the current batch', () => {
    const s = status([
      batch(0, 'canary', [['d1', 'succeeded']]),
      batch(1, 'batch', [['d2', 'pending']]),
    ]);
    s.currentBatch = 1;
    expect(elements(view(s)).some((e) => e.tag === 'button' && e.attrs['data-approve'])).toBe(
      false,
    );

    s.awaitingApproval = true;
    s.waiting = ['1 device: waiting for approval after batch 0'];
    const button = () => elements(view(s)).find((e) => e.attrs['data-approve'] === 'r1');
    expect(button()?.tag).toBe('button');
    expect(button()?.attrs.type).toBe('button');
    expect(texts(button()!)).toEqual(['Approve batch 1']);
    expect(button()!.attrs['aria-disabled']).toBeUndefined();

    // Batches are named as the engine and the CLI name them: without a canary the second is "Batch 1".
    const noCanary = status([
      batch(0, 'batch', [['d1', 'succeeded']]),
      batch(1, 'batch', [['d2', 'pending']]),
    ]);
    Object.assign(noCanary, { currentBatch: 1, awaitingApproval: true });
    const other = elements(view(noCanary)).find((e) => e.attrs['data-approve'] === 'r1')!;
    expect(texts(other)).toEqual(['Approve batch 1']);
    const meta = byClass(view(noCanary), 'meta')[0]!;
    expect(texts(meta).join('')).toContain('; at batch 1, 2 in all; awaiting approval');

    const busy = elements(view(s, { busy: true })).find((e) => e.attrs['data-approve'])!;
    expect(busy.attrs['aria-disabled']).toBe('true');

    const refused = 'Cannot approve: needs role operator; token wall-screen has viewer';
    const failed = view(s, { busy: false, error: refused });
    const error = byClass(failed, 'error').find((e) => texts(e).join('') === refused);
    expect(error?.attrs.id).toBe('approve-error-r1');
    const pressed = elements(failed).find((e) => e.attrs['data-approve'])!;
    expect(pressed.attrs['aria-describedby']).toBe('approve-error-r1');
    expect(pressed.attrs['aria-disabled']).toBeUndefined();
  });
});

type DeviceState = 'pending' | 'updating' | 'succeeded' | 'failed' | 'deferred';

function batch(index: number, kind: 'canary' | 'batch', devices: [string, DeviceState, string?][]) {
  const counts = {
    pending: 0,
    updating: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    reverting: 0,
    reverted: 0,
    deferred: 0,
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
    deferred: 0,
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
    waiting: [] as string[],
    approvedBatches: [] as number[],
    createdBy: 'alice',
    createdAt: '2026-01-01T00:00:00.000Z',
    counts,
    batches: batches.map(({ devices: _devices, ...b }) => b),
    failures: batches.flatMap((b) =>
      b.devices
        .filter((d) => d.state === 'failed')
        .map((d): Record<string, unknown> => ({ ...d, batch: b.index })),
    ),
    excluded: [],
  };
}
