// @ts-check
import { deviceButton } from './format.js';
import { h } from './view-node.js';

/**
 * @typedef {{ id: string, service: string, image: string }} GroupPin
 * @typedef {{
 *   name: string, selector: string | null, priority: number, members: string[],
 *   services: { service: string, revision: number }[], pins: GroupPin[]
 * }} Group
 * @typedef {{ id: string, group: string | null, device: string | null, service: string, image: string }} Pin
 */

/**
 * Groups by priority (highest first, as desired state ranks them), with what they assign and pin;
 * then the pins set on single devices, which outrank every group.
 * @param {Group[]} groups
 * @param {Pin[]} pins
 * @param {string | undefined} selected
 */
export function groupsView(groups, pins, selected) {
  const devicePins = pins.filter((pin) => pin.device !== null);
  const ranked = [...groups].sort(
    (a, b) => b.priority - a.priority || a.name.localeCompare(b.name),
  );
  return h(
    'div',
    {},
    ranked.length === 0
      ? h('p', { class: 'hint' }, 'No group yet.')
      : h(
          'table',
          { class: 'groups' },
          h('caption', { class: 'visually-hidden' }, 'Groups'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Group', 'Selector', 'Priority', 'Services', 'Pins'].map((name) =>
                h('th', { scope: 'col' }, name),
              ),
            ),
          ),
          h('tbody', {}, ranked.map(groupRow)),
        ),
    devicePins.length > 0 &&
      h(
        'table',
        { class: 'device-pins' },
        h('caption', {}, 'Device pins'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Device', 'Service', 'Image'].map((name) => h('th', { scope: 'col' }, name)),
          ),
        ),
        h(
          'tbody',
          {},
          devicePins.map((pin) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, deviceButton(pin.device ?? '', selected)),
              h('td', {}, pin.service),
              h('td', {}, h('code', {}, pin.image)),
            ),
          ),
        ),
      ),
  );
}

/** @param {Group} group */
function groupRow(group) {
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, group.name),
    h(
      'td',
      {},
      group.selector === null
        ? h('span', { class: 'muted' }, 'none')
        : h('code', {}, group.selector),
      group.members.length > 0 &&
        h('span', { class: 'muted' }, ` + ${group.members.length} listed devices`),
    ),
    h('td', { class: 'num' }, group.priority),
    h(
      'td',
      {},
      group.services.length === 0
        ? h('span', { class: 'muted' }, 'none')
        : group.services.map((s) => h('span', { class: 'tag' }, `${s.service} r${s.revision}`)),
    ),
    h(
      'td',
      {},
      group.pins.length === 0
        ? h('span', { class: 'muted' }, 'none')
        : h(
            'ul',
            { class: 'pins' },
            group.pins.map((pin) =>
              h(
                'li',
                {},
                h('span', { class: 'tag pin' }, 'pinned'),
                ` ${pin.service} → `,
                h('code', {}, pin.image),
              ),
            ),
          ),
    ),
  );
}
