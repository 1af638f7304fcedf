// @ts-check
import { timestamp } from './format.js';
import { h } from './view-node.js';

/**
 * @typedef {{ id: string, device: string, type: string, at: string, payload: Record<string, unknown> }} DeviceEvent
 */

/**
 * A device's recent events, newest first, each summed up in one line.
 * @param {string} deviceId
 * @param {DeviceEvent[]} events
 */
export function eventsView(deviceId, events) {
  return h(
    'div',
    {},
    h('p', { class: 'summary' }, `Recent events of `, h('strong', {}, deviceId)),
    events.length === 0
      ? h('p', { class: 'hint' }, 'This device has reported no event.')
      : h(
          'table',
          { class: 'events' },
          h('caption', { class: 'visually-hidden' }, `Events of ${deviceId}`),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Time', 'Type', 'Service', 'What happened'].map((name) =>
                h('th', { scope: 'col' }, name),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            events.map((event) =>
              h(
                'tr',
                { class: `event-${event.type}` },
                h('td', {}, timestamp(event.at)),
                h('td', {}, h('span', { class: `tag ${event.type}` }, event.type)),
                h('td', {}, text(event.payload.service) || '—'),
                h('td', { class: 'what' }, eventSummary(event.payload)),
              ),
            ),
          ),
        ),
  );
}

/**
 * One line for a DeviceEvent as the agent sent it (apply, auto-update, rollback, drift, error).
 * @param {Record<string, unknown>} p
 */
export function eventSummary(p) {
  const reason = p.reason === undefined ? '' : `: ${text(p.reason)}`;
  switch (p.type) {
    case 'apply':
      return `generation ${text(p.generation)} ${text(p.result)}${reason}`;
    case 'auto-update': {
      const results = Array.isArray(p.results) ? p.results : [];
      return `${p.dryRun ? 'dry run, ' : ''}${results.length} containers checked${reason}`;
    }
    case 'rollback':
      return `${text(p.fromImage)} → ${text(p.toImage)} (${text(p.trigger)}${p.restored ? ', restored' : ', NOT restored'})${reason}`;
    case 'drift':
      return `expected ${text(p.expected)}, found ${text(p.observed)} (${text(p.action)})`;
    case 'error':
      return text(p.message);
    default:
      return JSON.stringify(p);
  }
}

/** @param {unknown} value */
function text(value) {
  return value === undefined || value === null ? '' : String(value);
}
