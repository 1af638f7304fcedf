// @ts-check
/* global document, window, localStorage, HTMLElement, Element, AbortController */
import { ApiClient, TokenRefused } from './api.js';
import { devicesView } from './devices.js';
import { eventsView } from './events.js';
import { groupsView } from './groups.js';
import { ACTIVE_STATES, approveBatch, rolloutsView } from './rollouts.js';
import { h, mount } from './view-node.js';

/**
 * @typedef {import('./devices.js').DevicePage} DevicePage
 * @typedef {import('./groups.js').Group} Group
 * @typedef {import('./groups.js').Pin} Pin
 * @typedef {import('./rollouts.js').RolloutSummary} RolloutSummary
 * @typedef {import('./rollouts.js').RolloutStatus} RolloutStatus
 * @typedef {import('./rollouts.js').Approval} Approval
 * @typedef {import('./events.js').DeviceEvent} DeviceEvent
 * @typedef {import('./view-node.js').ViewChild} ViewChild
 */

const TOKEN_KEY = 'podfleet.token';
/** Devices, groups and the rollout list have no stream: they are read again this often. */
const REFRESH_MS = 5000;
const ROLLOUTS_SHOWN = 5;
const HAPPENINGS_SHOWN = 5;
const EVENTS_SHOWN = 20;
/** The API's largest page; a bigger fleet shows its first devices and says that more exist. */
const DEVICES_SHOWN = 500;

/** @param {string} id */
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return element;
}

const ui = {
  form: /** @type {HTMLFormElement} */ (byId('token-form')),
  token: /** @type {HTMLInputElement} */ (byId('token')),
  tokenError: byId('token-error'),
  dashboard: byId('dashboard'),
  connection: byId('connection'),
  problem: byId('problem'),
  forget: byId('forget-token'),
  rollouts: byId('rollouts'),
  devices: byId('devices'),
  events: byId('device-events'),
  groups: byId('groups'),
};

/** What the page shows, as last read. */
const state = {
  /** @type {ApiClient | undefined} */ api: undefined,
  /** @type {number | undefined} */ timer: undefined,
  /** @type {ApiClient | undefined} the client whose refresh is under way */ refreshing: undefined,
  /** @type {string | undefined} the device whose events are shown */ selected: undefined,
  /** @type {DevicePage} */ devices: { items: [], nextCursor: null },
  /** @type {Group[]} */ groups: [],
  /** @type {Pin[]} */ pins: [],
  /** @type {{ device: string, items: DeviceEvent[] } | undefined} */ events: undefined,
  /** @type {RolloutSummary[]} */ rollouts: [],
  /** @type {Map<string, RolloutStatus>} */ statuses: new Map(),
  /** @type {Map<string, string[]>} */ happenings: new Map(),
  /** @type {Map<string, Approval>} approvals sent from this page, by rollout */ approvals:
    new Map(),
  /** @type {Map<string, AbortController>} */ streams: new Map(),
};

/** @param {string} token */
function open(token) {
  state.api = new ApiClient(token);
  ui.form.hidden = true;
  ui.forget.hidden = false;
  ui.connection.textContent = 'Connecting…';
  void refresh();
  state.timer = window.setInterval(() => void refresh(), REFRESH_MS);
}

/** @param {string} message why the token form is shown again */
function close(message) {
  window.clearInterval(state.timer);
  for (const stream of state.streams.values()) stream.abort();
  state.streams.clear();
  state.statuses.clear();
  state.happenings.clear();
  state.approvals.clear();
  state.api = undefined;
  state.selected = undefined;
  state.events = undefined;
  localStorage.removeItem(TOKEN_KEY);
  ui.dashboard.hidden = true;
  ui.forget.hidden = true;
  ui.form.hidden = false;
  ui.connection.textContent = '';
  ui.problem.textContent = '';
  ui.tokenError.textContent = message;
  ui.token.value = '';
  ui.token.focus();
}

/** Reads everything that has no stream, then draws the page. */
async function refresh() {
  const api = state.api;
  // A slow controller gets no second round of requests while it still answers the first.
  if (!api || state.refreshing === api) return;
  state.refreshing = api;
  try {
    const [devices, groups, pins, rollouts] = await Promise.all([
      api.get(`/v1/devices?limit=${DEVICES_SHOWN}`),
      api.get('/v1/groups?limit=500'),
      api.get('/v1/pins?limit=500'),
      api.get(`/v1/rollouts?limit=${ROLLOUTS_SHOWN}`),
    ]);
    // A refresh that started before the token was forgotten or replaced draws nothing.
    if (api !== state.api) return;
    state.devices = /** @type {DevicePage} */ (devices);
    state.groups = /** @type {{ items: Group[] }} */ (groups).items;
    state.pins = /** @type {{ items: Pin[] }} */ (pins).items;
    await followRollouts(api, /** @type {{ items: RolloutSummary[] }} */ (rollouts).items);
    if (state.selected !== undefined) await loadEvents(api, state.selected);
    if (api !== state.api) return;
    drawAll();
    ui.dashboard.hidden = false;
    ui.connection.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    ui.problem.textContent = '';
  } catch (error) {
    failed(api, error);
  } finally {
    if (state.refreshing === api) state.refreshing = undefined;
  }
}

/**
 * Streams the active rollouts and reads finished ones once: a finished status no longer changes.
 * @param {ApiClient} api
 * @param {RolloutSummary[]} rollouts
 */
async function followRollouts(api, rollouts) {
  state.rollouts = rollouts;
  const listed = new Set(rollouts.map((rollout) => rollout.id));
  for (const [id, stream] of state.streams) {
    if (!listed.has(id)) stream.abort();
  }
  for (const id of state.statuses.keys()) {
    if (!listed.has(id)) state.statuses.delete(id);
  }
  for (const id of state.approvals.keys()) {
    if (!listed.has(id)) state.approvals.delete(id);
  }
  const unread = [];
  for (const rollout of rollouts) {
    if (ACTIVE_STATES.includes(rollout.state)) {
      if (!state.streams.has(rollout.id)) follow(api, rollout.id);
      continue;
    }
    const known = state.statuses.get(rollout.id);
    if (!known || ACTIVE_STATES.includes(known.state)) unread.push(rollout.id);
  }
  const statuses = await Promise.all(
    unread.map((id) => api.get(`/v1/rollouts/${encodeURIComponent(id)}`)),
  );
  for (const status of /** @type {RolloutStatus[]} */ (statuses)) keepStatus(status);
}

/**
 * A rollout's newest status. Once no approval holds it, the outcome of an earlier press is stale.
 * @param {RolloutStatus} status
 */
function keepStatus(status) {
  state.statuses.set(status.id, status);
  if (!status.awaitingApproval && !state.approvals.get(status.id)?.busy) {
    state.approvals.delete(status.id);
  }
}

/**
 * Follows one rollout's stream until it ends; the next refresh follows it again if it broke.
 * @param {ApiClient} api
 * @param {string} id
 */
function follow(api, id) {
  const stream = new AbortController();
  state.streams.set(id, stream);
  const path = `/v1/rollouts/${encodeURIComponent(id)}/stream`;
  api
    .stream(
      path,
      (event) => {
        if (api !== state.api) return;
        if (event.type === 'status') {
          keepStatus(JSON.parse(event.data));
        } else if (event.type === 'happening') {
          const { line } = JSON.parse(event.data);
          const recent = [String(line), ...(state.happenings.get(id) ?? [])];
          state.happenings.set(id, recent.slice(0, HAPPENINGS_SHOWN));
        } else return;
        drawRollouts();
      },
      stream.signal,
    )
    .catch((error) => {
      if (!stream.signal.aborted) failed(api, error);
    })
    .finally(() => {
      if (state.streams.get(id) === stream) state.streams.delete(id);
    });
}

/**
 * @param {ApiClient} api
 * @param {string} device
 */
async function loadEvents(api, device) {
  const page = await api.get(
    `/v1/devices/${encodeURIComponent(device)}/events?limit=${EVENTS_SHOWN}`,
  );
  if (api === state.api && state.selected === device) {
    state.events = { device, items: /** @type {{ items: DeviceEvent[] }} */ (page).items };
  }
}

/** @param {string} device */
async function select(device) {
  const api = state.api;
  if (!api) return;
  state.selected = device;
  state.events = undefined;
  drawAll();
  try {
    await loadEvents(api, device);
    drawEvents();
    ui.events.scrollIntoView({ block: 'nearest' });
  } catch (error) {
    failed(api, error);
  }
}

/**
 * Approves the batch an approval holds; on success the answer is the rollout's new status.
 * @param {string} id
 */
async function approve(id) {
  const api = state.api;
  if (!api || state.approvals.get(id)?.busy) return;
  state.approvals.set(id, { busy: true });
  drawRollouts();
  try {
    const outcome = await approveBatch(api, id);
    if (api !== state.api) return;
    if ('status' in outcome) {
      state.approvals.delete(id);
      keepStatus(outcome.status);
    } else state.approvals.set(id, { busy: false, error: outcome.error });
    drawRollouts();
  } catch (error) {
    state.approvals.delete(id);
    failed(api, error);
  }
}

/**
 * @param {ApiClient} api the client of the request that failed
 * @param {unknown} error
 */
function failed(api, error) {
  if (api !== state.api) return;
  if (error instanceof TokenRefused) {
    close(`Token refused: ${error.message}. Enter another token.`);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  ui.problem.textContent = `Cannot read the controller: ${message}`;
}

function drawAll() {
  drawRollouts();
  draw(ui.devices, devicesView(state.devices, state.selected, Date.now()));
  draw(ui.groups, groupsView(state.groups, state.pins, state.selected));
  drawEvents();
}

function drawRollouts() {
  const entries = state.rollouts.map((summary) => ({
    summary,
    status: state.statuses.get(summary.id),
    happenings: state.happenings.get(summary.id) ?? [],
    approval: state.approvals.get(summary.id),
  }));
  draw(ui.rollouts, rolloutsView(entries, state.selected));
}

function drawEvents() {
  const { selected, events } = state;
  if (selected === undefined) {
    draw(ui.events, h('p', { class: 'hint' }, 'Choose a device to see its recent events.'));
  } else if (!events || events.device !== selected) {
    draw(ui.events, h('p', { class: 'hint' }, `Reading the events of ${selected}…`));
  } else draw(ui.events, eventsView(events.device, events.items));
}

/** Buttons that keep keyboard focus across a redraw, by the attribute that tells them apart. */
const FOCUS_KEYS = ['data-device', 'data-approve'];

/**
 * Replaces a section's content as the operator left it: keyboard focus stays on the same device
 * or approve button, and a details element they opened stays open.
 * @param {HTMLElement} container
 * @param {ViewChild} view
 */
function draw(container, view) {
  const focused = document.activeElement;
  const inside = focused instanceof HTMLElement && container.contains(focused);
  const key = inside ? FOCUS_KEYS.find((name) => focused.hasAttribute(name)) : undefined;
  const value = key && focused ? focused.getAttribute(key) : null;
  const opened = new Set(
    [...container.querySelectorAll('details[open][data-keep-open]')].map((details) =>
      details.getAttribute('data-keep-open'),
    ),
  );
  container.replaceChildren(mount(view, document));
  for (const details of container.querySelectorAll('details[data-keep-open]')) {
    if (opened.has(details.getAttribute('data-keep-open'))) details.setAttribute('open', '');
  }
  if (!key || value === null) return;
  for (const button of container.querySelectorAll(`button[${key}]`)) {
    if (button instanceof HTMLElement && button.getAttribute(key) === value) button.focus();
  }
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = ui.token.value.trim();
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  ui.tokenError.textContent = '';
  open(token);
});

ui.forget.addEventListener('click', () => close('Token forgotten.'));

// One listener for every device and approve button, whichever view drew it.
document.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target.closest('button') : null;
  if (!(target instanceof HTMLElement)) return;
  if (target.dataset.device !== undefined) void select(target.dataset.device);
  else if (target.dataset.approve !== undefined) void approve(target.dataset.approve);
});

const stored = localStorage.getItem(TOKEN_KEY);
if (stored) open(stored);
else close('');
