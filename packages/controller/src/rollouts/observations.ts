import type { PrismaClient } from '../db/client.js';
import type { DeviceObservation } from './progress.js';

type Db = Pick<PrismaClient, 'device' | 'deviceEvent'>;

interface ReportedService {
  name: string;
  image?: string;
  ready?: boolean;
}

/**
 * What the devices report about one service: liveness, the generation applied, the service's
 * image and readiness from the last state report, and rollbacks or failed applies since `since`.
 */
export async function observeDevices(
  db: Db,
  deviceIds: readonly string[],
  service: string,
  since: Date,
): Promise<Map<string, DeviceObservation>> {
  const observations = new Map<string, DeviceObservation>();
  if (deviceIds.length === 0) return observations;
  // One after the other: inside a transaction both would share one connection.
  const devices = await db.device.findMany({
    where: { id: { in: [...deviceIds] } },
    select: {
      id: true,
      online: true,
      onlineSince: true,
      appliedGeneration: true,
      lastState: true,
    },
  });
  const events = await db.deviceEvent.findMany({
    where: {
      deviceId: { in: [...deviceIds] },
      type: { in: ['rollback', 'apply'] },
      receivedAt: { gte: since },
    },
    select: { deviceId: true, payload: true },
  });
  for (const device of devices) {
    const services = ((device.lastState as { services?: ReportedService[] } | null)?.services ??
      []) as ReportedService[];
    const reported = services.find((s) => s.name === service);
    const observation: DeviceObservation = {
      online: device.online,
      appliedGeneration: device.appliedGeneration,
      failures: [],
    };
    if (device.onlineSince) observation.onlineSince = device.onlineSince.getTime();
    if (reported?.image !== undefined) observation.image = reported.image;
    if (reported?.ready !== undefined) observation.ready = reported.ready;
    observations.set(device.id, observation);
  }
  for (const { deviceId, payload } of events) {
    const failure = failureOf(payload as Record<string, unknown>, service);
    if (failure) observations.get(deviceId)?.failures.push(failure);
  }
  return observations;
}

/** A rollback of the service, or an apply that failed or was rejected, as the agent reported it. */
function failureOf(
  event: Record<string, unknown>,
  service: string,
): { generation: number; reason: string } | undefined {
  const generation = typeof event.generation === 'number' ? event.generation : undefined;
  if (generation === undefined) return undefined;
  if (event.type === 'rollback' && event.service === service) {
    return { generation, reason: String(event.reason ?? 'rolled back by the agent') };
  }
  if (event.type === 'apply' && (event.result === 'failed' || event.result === 'rejected')) {
    const services = Array.isArray(event.services) ? (event.services as { name?: string }[]) : [];
    if (services.length > 0 && !services.some((s) => s.name === service)) return undefined;
    return {
      generation,
      reason: `apply ${String(event.result)}: ${String(event.reason ?? 'no reason given')}`,
    };
  }
  return undefined;
}
