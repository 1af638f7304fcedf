import { z } from 'zod';
import { DeviceId } from '../manifest/device-id.js';
import { DeviceFailure } from './device-failure.js';

const common = {
  /** Unique per event (a UUID), so that a redelivered event is stored once. */
  id: z.uuid(),
  device: DeviceId,
  at: z.iso.datetime(),
};

export const ApplyEvent = z
  .strictObject({
    ...common,
    type: z.literal('apply'),
    generation: z.number().int().min(0),
    result: z.enum(['applied', 'failed', 'rejected']),
    /** Services whose units changed, with the image each now runs. */
    services: z
      .array(z.strictObject({ name: z.string(), image: z.string(), action: z.string() }))
      .default([]),
    reason: z.string().optional(),
    /** Why it failed or was rejected, for the rollout policy; absent from older agents' events. */
    failure: DeviceFailure.optional(),
  })
  .refine((event) => event.result !== 'applied' || event.failure === undefined, {
    message: 'only a failed or rejected apply carries a failure',
    path: ['failure'],
  });

/** One line of `podman auto-update --format json`. */
export const AutoUpdateResult = z.strictObject({
  unit: z.string(),
  container: z.string(),
  image: z.string(),
  policy: z.string(),
  updated: z.enum(['true', 'false', 'pending', 'failed', 'rolled back']),
});

export const AutoUpdateEvent = z.strictObject({
  ...common,
  type: z.literal('auto-update'),
  dryRun: z.boolean(),
  results: z.array(AutoUpdateResult),
  reason: z.string().optional(),
});

export const RollbackEvent = z.strictObject({
  ...common,
  type: z.literal('rollback'),
  service: z.string(),
  generation: z.number().int().min(0),
  trigger: z.enum(['apply', 'auto-update', 'health']),
  fromImage: z.string(),
  toImage: z.string(),
  reason: z.string(),
  /** Whether the previous unit and image run again after the rollback. */
  restored: z.boolean(),
  /** The failure that triggered the rollback; absent from older agents' events. */
  failure: DeviceFailure.optional(),
});

export const DriftEvent = z.strictObject({
  ...common,
  type: z.literal('drift'),
  service: z.string(),
  expected: z.string(),
  observed: z.string(),
  action: z.enum(['reconciled', 'reported']),
});

export const ErrorEvent = z.strictObject({
  ...common,
  type: z.literal('error'),
  message: z.string(),
  service: z.string().optional(),
  generation: z.number().int().min(0).optional(),
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
