import { z } from 'zod';
import { DeviceId } from '../manifest/device-id.js';
import { DeviceFailure } from './device-failure.js';
import { clipDeviceText, DEVICE_LIMITS, deviceCount, deviceText, deviceTime } from './limits.js';

const name = deviceText(DEVICE_LIMITS.name);
const image = deviceText(DEVICE_LIMITS.image);
const text = deviceText(DEVICE_LIMITS.text);

const common = {
  /** Unique per event (a UUID), so that a redelivered event is stored once. */
  id: z.uuid(),
  device: DeviceId,
  /** By the device's clock: kept and shown as the device's own, never used to order events. */
  at: deviceTime,
};

export const ApplyEvent = z
  .strictObject({
    ...common,
    type: z.literal('apply'),
    generation: deviceCount,
    result: z.enum(['applied', 'failed', 'rejected']),
    /** Services whose units changed, with the image each now runs. */
    services: z
      .array(z.strictObject({ name, image, action: name }))
      .max(DEVICE_LIMITS.services)
      .default([]),
    reason: text.optional(),
    /** Why it failed or was rejected, for the rollout policy; absent from older agents' events. */
    failure: DeviceFailure.optional(),
  })
  .refine((event) => event.result !== 'applied' || event.failure === undefined, {
    message: 'only a failed or rejected apply carries a failure',
    path: ['failure'],
  });

/** One line of `podman auto-update --format json`. */
export const AutoUpdateResult = z.strictObject({
  unit: name,
  container: name,
  image,
  policy: name,
  updated: z.enum(['true', 'false', 'pending', 'failed', 'rolled back', 'skipped']),
  /** Why: for `skipped`, `rejected <digest>` (the image the agent rolled back from). */
  reason: text.optional(),
});

export const AutoUpdateEvent = z.strictObject({
  ...common,
  type: z.literal('auto-update'),
  dryRun: z.boolean(),
  results: z.array(AutoUpdateResult).max(DEVICE_LIMITS.services),
  reason: text.optional(),
});

export const RollbackEvent = z.strictObject({
  ...common,
  type: z.literal('rollback'),
  service: name,
  generation: deviceCount,
  trigger: z.enum(['apply', 'auto-update', 'health']),
  fromImage: image,
  toImage: image,
  reason: text,
  /** Whether the previous unit and image run again after the rollback. */
  restored: z.boolean(),
  /** The failure that triggered the rollback; absent from older agents' events. */
  failure: DeviceFailure.optional(),
});

export const DriftEvent = z.strictObject({
  ...common,
  type: z.literal('drift'),
  service: name,
  expected: text,
  observed: text,
  action: z.enum(['reconciled', 'reported']),
});

export const ErrorEvent = z.strictObject({
  ...common,
  type: z.literal('error'),
  message: text,
  service: name.optional(),
  generation: deviceCount.optional(),
});

/** What an agent publishes to pf/v1/dev/{id}/events. */
export const DeviceEvent = z.discriminatedUnion('type', [
  ApplyEvent,
  AutoUpdateEvent,
  RollbackEvent,
  DriftEvent,
  ErrorEvent,
]);
export type DeviceEvent = z.output<typeof DeviceEvent>;
export type DeviceEventInput = z.input<typeof DeviceEvent>;
/** The types of DeviceEvent, from the union itself: what a filter (`events --type`) may name. */
export const DEVICE_EVENT_TYPES: readonly DeviceEvent['type'][] = DeviceEvent.options.map(
  (event) => event.shape.type.value,
);

/**
 * The event with its free text (reasons, messages, journald lines: podman's and the services'
 * words, not the agent's) clipped to DEVICE_LIMITS, and the oldest journal lines then the text
 * cut further until the whole fits `eventBytes`, so the controller never refuses an event for what
 * a container printed. The agent sends every event through this.
 */
export function clipDeviceEvent(event: DeviceEvent): DeviceEvent {
  let textMax: number = DEVICE_LIMITS.text;
  let lines: number = DEVICE_LIMITS.journalLines;
  for (;;) {
    const clipped = clipFields(event, textMax, lines);
    if (Buffer.byteLength(JSON.stringify(clipped)) <= DEVICE_LIMITS.eventBytes || textMax < 64)
      return clipped;
    if (lines > 0) lines = Math.floor(lines / 2);
    else textMax = Math.floor(textMax / 2);
  }
}

function clipFields(event: DeviceEvent, textMax: number, lines: number): DeviceEvent {
  const text = (value: string) => clipDeviceText(value, textMax);
  const failure = (value: DeviceFailure): DeviceFailure => ({
    ...value,
    ...(value.detail === undefined ? {} : { detail: text(value.detail) }),
    journal: (lines === 0 ? [] : value.journal.slice(-lines)).map((line) =>
      clipDeviceText(line, DEVICE_LIMITS.journalLine),
    ),
  });
  switch (event.type) {
    case 'apply':
      return {
        ...event,
        ...(event.reason === undefined ? {} : { reason: text(event.reason) }),
        ...(event.failure ? { failure: failure(event.failure) } : {}),
      };
    case 'auto-update':
      return { ...event, ...(event.reason === undefined ? {} : { reason: text(event.reason) }) };
    case 'rollback':
      return {
        ...event,
        reason: text(event.reason),
        ...(event.failure ? { failure: failure(event.failure) } : {}),
      };
    case 'drift':
      return { ...event, expected: text(event.expected), observed: text(event.observed) };
    case 'error':
      return { ...event, message: text(event.message) };
  }
}
