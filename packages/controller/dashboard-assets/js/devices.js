// @ts-check
import { deviceButton, orDash, timeAgo } from './format.js';
import { h } from './view-node.js';

/**
 * @typedef {{
 *   id: string, labels: Record<string, string>, online: boolean, lastSeen: string | null,
 *   agentVersion: string | null, podmanVersion: string | null, systemdVersion: string | null,
 *   unitStyle: string | null, desiredGeneration: number, appliedGeneration: number
 * }} Device
 * @typedef {{ items: Device[], nextCursor: string | null }} DevicePage
 */

/**
 * The devices table: liveness, versions, and whether each runs the manifest it was sent.
 * @param {DevicePage} page
 * @param {string | undefined} selected the device whose events are shown
 * @param {number} now epoch milliseconds, for "last seen … ago"
 */
export function devicesView(page, selected, now) {
  const devices = page.items;
  if (devices.length === 0) return h('p', { class: 'hint' }, 'No device has enrolled yet.');
  const online = devices.filter((device) => device.online).length;
  const behind = devices.filter((d) => d.appliedGeneration < d.desiredGeneration).length;
  return h(
    'div',
    {},
    h(
      'p',
      { class: 'summary' },
      `${devices.length} devices${page.nextCursor ? ' shown (more exist)' : ''}: `,
      `${online} online, ${devices.length - online} offline, ${behind} behind their desired generation`,
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
          ['Device', 'Status', 'Last seen', 'Labels', 'Podman', 'systemd', 'Agent'].map((name) =>
            h('th', { scope: 'col' }, name),
          ),
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
  const behind = device.appliedGeneration < device.desiredGeneration;
  return h(
    'tr',
    { class: device.id === selected ? 'selected' : undefined },
    h('th', { scope: 'row' }, deviceButton(device.id, selected)),
    h('td', {}, liveness(device.online)),
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
    h(
      'td',
      { class: behind ? 'num behind' : 'num' },
      `${device.appliedGeneration} / ${device.desiredGeneration}`,
      behind && h('span', { class: 'tag warn' }, 'behind'),
    ),
  );
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
