import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CommandResult, DeviceId, MAX_LOG_LINES } from '@podfleet/shared';
import { callerOf } from '../auth/plugin.js';
import type { RoutePlugin } from '../http/app.js';
import { HttpError, conflict } from '../http/errors.js';
import { CommandTimeout, type DeviceCommands } from './device-commands.js';
import { unknownDevice } from '../devices/unknown-device.js';
import { notFoundNear } from '../http/close-names.js';

const ServiceName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'not a service name' });

const CommandBody = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('auto-update'),
    dryRun: z.boolean().default(false),
    /** Forget the images the device rolled back from first (agents before 0.2 refuse it). */
    retry: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal('logs'),
    service: ServiceName,
    lines: z.number().int().min(1).max(MAX_LOG_LINES).default(100),
  }),
  z.strictObject({ type: z.literal('restart'), service: ServiceName }),
]);

/**
 * The services a device has: those its manifest asks for and those it last reported (one being
 * removed still runs). A command for any other would only come back as the agent's error.
 */
function servicesOf(device: { desiredManifest: unknown; lastState: unknown }): Set<string> {
  const names = new Set<string>();
  for (const source of [device.desiredManifest, device.lastState]) {
    const services = (source as { services?: unknown } | null)?.services;
    if (!Array.isArray(services)) continue;
    for (const service of services as { name?: unknown }[]) {
      if (typeof service?.name === 'string') names.add(service.name);
    }
  }
  return names;
}

/** `POST /v1/devices/:id/commands`: auto-update now (or dry run), a service's logs, a restart. */
export function commandRoutes(commands: DeviceCommands): RoutePlugin {
  return (app: FastifyInstance) => {
    app.withTypeProvider<ZodTypeProvider>().post(
      '/devices/:id/commands',
      {
        config: { role: 'operator' },
        schema: {
          tags: ['devices'],
          summary:
            'Ask a device to run auto-update, tail a service’s logs, or restart a service; waits for its answer',
          params: z.strictObject({ id: DeviceId }),
          body: CommandBody,
          response: { 200: z.object({ device: z.string(), result: CommandResult }) },
        },
      },
      async (request) => {
        const { id } = request.params;
        const prisma = app.deps.db.prisma;
        const device = await prisma.device.findUnique({
          where: { id },
          select: { online: true, desiredManifest: true, lastState: true },
        });
        if (!device) throw await unknownDevice(prisma, id);
        if (request.body.type !== 'auto-update') {
          const known = servicesOf(device);
          const { service } = request.body;
          if (!known.has(service))
            throw notFoundNear(`service ${service} on device ${id}`, known, service);
        }
        if (!device.online) throw conflict(`device ${id} is offline`);
        const { retry, ...rest } =
          request.body.type === 'auto-update'
            ? request.body
            : { ...request.body, retry: undefined };
        // Sent only when asked: an older agent's strict schema refuses a key it does not know.
        const body = retry ? { ...rest, retry } : rest;
        // auto-update and restart wait for the agent's health gate: give them longer.
        const timeoutMs = body.type === 'logs' ? 30_000 : 180_000;
        let response;
        try {
          response = await commands.send(id, body, timeoutMs);
        } catch (error) {
          if (error instanceof CommandTimeout) throw new HttpError(504, error.message);
          throw error;
        }
        request.log.info(
          { device: id, command: body.type, by: callerOf(request).name, ok: response.ok },
          'device command',
        );
        if (!response.ok) throw new HttpError(502, `device ${id}: ${response.error}`);
        return { device: id, result: response.result };
      },
    );
  };
}
