// @ts-check
import { h } from './view-node.js';

/**
 * "12 s ago", "5 min ago", "3 h ago", "2 d ago"; "never" without a time.
 * @param {string | null | undefined} iso
 * @param {number} now epoch milliseconds
 */
export function ago(iso, now) {
  if (!iso) return 'never';
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/**
 * A `<time>` showing how long ago, with the exact time on hover.
 * @param {string | null | undefined} iso
 * @param {number} now
 */
export function timeAgo(iso, now) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: iso, title: iso }, ago(iso, now));
}

/**
 * A `<time>` with the local date and time.
 * @param {string} iso
 */
export function timestamp(iso) {
  return h('time', { datetime: iso }, new Date(iso).toLocaleString());
}

/**
 * A value the API may not know yet (a device that never reported): an em dash then.
 * @param {string | number | null | undefined} value
 */
export function orDash(value) {
  return value === null || value === undefined || value === '' ? '—' : String(value);
}

/**
 * A button that shows a device's events when pressed (one delegated listener reads data-device).
 * @param {string} id
 * @param {string | undefined} selected
 */
export function deviceButton(id, selected) {
  return h(
    'button',
    { type: 'button', class: 'device', 'data-device': id, 'aria-pressed': String(id === selected) },
    id,
  );
}
