// @ts-check
import { deviceButton, orDash, timeAgo } from './format.js';
import { h } from './view-node.js';

/**
 * @typedef {{
 *   id: string, labels: Record<string, string>, online: boolean, lastSeen: string | null,
 *   agentVersion: string | null, podmanVersion: string | null, systemdVersion: string | null,
 *   unitStyle: string | null, desiredGeneration: number, appliedGeneration: number,
 *   compliance: Compliance
 * }} Device
 * @typedef {{
 *   state: string,
 *   services: { service: string, state: string, desired: string | null, running: string | null,
 *     failure?: { reason: string, detail: string } }[]
 * }} Compliance
 * @typedef {{ items: Device[], nextCursor: string | null }} DevicePage
 */

/** Compliance states worst first, as the controller declares them (compliance/states.ts). */
const COMPLIANCE_ORDER = [
  'offline', 'unknown', 'failed', 'rolled-back', 'drifted', 'updating', 'in-sync',
]; // prettier-ignore

/**
 * The devices table: liveness, versions, and whether each runs what its manifest asks
 * (compliance: the desired image, ready), with the counts per compliance state above it.
 * @param {DevicePage} page
 * @param {string | undefined} selected the device whose events are shown
 * @param {number} now epoch milliseconds, for "last seen … ago"
 */
export function devicesView(page, selected, now) {
  const devices = page.items;
  if (devices.length === 0) return h('p', { class: 'hint' }, 'No device has enrolled yet.');
  const online = devices.filter((device) => device.online).length;
  return h(
    'div',
    {},
    h(
      'p',
      { class: 'summary' },
      `${devices.length} devices${page.nextCursor ? ' shown (more exist)' : ''}: `,
      `${online} online, ${devices.length - online} offline; `,
      complianceCounts(devices),
    ),
    h(
      'table',
      { class: 'devices' },
      h('caption', { class: 'visually-hidden' }, 'Devices'),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          [
            'Device',
            'Status',
            'Compliance',
            'Last seen',
            'Labels',
            'Podman',
            'systemd',
            'Agent',
          ].map((name) => h('th', { scope: 'col' }, name)),
          h('th', { scope: 'col', title: 'applied / desired manifest generation' }, 'Generation'),
        ),
      ),
      h(
        'tbody',
        {},
        devices.map((device) => deviceRow(device, selected, now)),
      ),
    ),
  );
}

/**
 * @param {Device} device
 * @param {string | undefined} selected
 * @param {number} now
 */
function deviceRow(device, selected, now) {
  return h(
    'tr',
    { class: device.id === selected ? 'selected' : undefined },
    h('th', { scope: 'row' }, deviceButton(device.id, selected)),
    h('td', {}, liveness(device.online)),
    h(
      'td',
      { class: `compliance compliance-${device.compliance.state}` },
      compliance(device.compliance),
    ),
    h('td', {}, timeAgo(device.lastSeen, now)),
    h('td', {}, labels(device.labels)),
    h(
      'td',
      {},
      orDash(device.podmanVersion),
      device.unitStyle && h('span', { class: 'muted' }, ` ${device.unitStyle}`),
    ),
    h('td', {}, orDash(device.systemdVersion)),
    h('td', {}, orDash(device.agentVersion)),
    // The generation alone says nothing of what runs (compliance does): shown, not judged.
    h('td', { class: 'num' }, `${device.appliedGeneration} / ${device.desiredGeneration}`),
  );
}

/**
 * `2 in-sync, 1 failed`: how many devices shown are in each state, worst first.
 * @param {Device[]} devices
 */
export function complianceCounts(devices) {
  /** @type {Map<string, number>} */
  const counts = new Map();
  for (const device of devices) {
    counts.set(device.compliance.state, (counts.get(device.compliance.state) ?? 0) + 1);
  }
  const parts = COMPLIANCE_ORDER.filter((state) => counts.has(state)).map(
    (state) => `${counts.get(state)} ${state}`,
  );
  return h('span', { class: 'compliance-counts' }, parts.join(', '));
}

/**
 * The device's state, and each service not in it that explains it: `failed` with
 * `web: start-timeout — runs web:1.4, asked web:1.8`.
 * @param {Compliance} compliance
 */
function compliance({ state, services }) {
  const notes = services
    .filter((s) => s.state === state && state !== 'in-sync' && state !== 'offline')
    .map((s) =>
      h(
        'li',
        {},
        s.failure ? `${s.service}: ${s.failure.reason}` : s.service,
        s.desired !== s.running &&
          ` — runs ${s.running ?? 'nothing'}, asked ${s.desired ?? 'nothing'}`,
      ),
    );
  return [
    h('span', { class: `tag compliance-${state}` }, state),
    notes.length > 0 && h('ul', { class: 'compliance-services' }, notes),
  ];
}

/** @param {boolean} online */
export function liveness(online) {
  return h(
    'span',
    { class: online ? 'liveness online' : 'liveness offline' },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    online ? 'online' : 'offline',
  );
}

/** @param {Record<string, string>} labels */
function labels(labels) {
  const entries = Object.entries(labels);
  if (entries.length === 0) return h('span', { class: 'muted' }, 'none');
  return h(
    'ul',
    { class: 'labels' },
    entries.map(([key, value]) => h('li', {}, `${key}=${value}`)),
  );
}
