import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NewDeviceId } from '@podfleet/shared';
import { commitChange } from '../audit/change.js';
import { Labels } from '../desired/index.js';
import { patchLabels } from '../devices/device-rows.js';
import { complianceOf } from '../compliance/read.js';
import { deviceView } from '../devices/view.js';
import { GroupName } from '../groups/schemas.js';
import { conflict, notFound } from '../http/errors.js';
import { issueCredentials } from './credentials.js';
import { Enrolled } from './schemas.js';

/** The device whose identity is issued: it may be created, so not a controller's client id. */
const IdentityParams = z.strictObject({ id: NewDeviceId });

export const IssueIdentity = z.strictObject({
  /** The device's labels (added to those it has, when reissuing). */
  labels: Labels.default({}),
  /** A group the device joins as an explicit member. */
  group: GroupName.optional(),
  /** The device exists: issue it new credentials (its old ones stop working). */
  reissue: z.boolean().default(false),
});

export const IssuedIdentity = Enrolled.extend({
  /** False when the device existed and `reissue` gave it new credentials. */
  created: z.boolean(),
});

/**
 * POST /v1/devices/:id/identity (admin): what an operator's enrollment (`podfleet enroll ssh`)
 * installs on a device it reaches itself: the device record, created here, and its credentials
 * from the same issuers as POST /v1/enroll, in one audited transaction. The response is the only
 * time the credentials are shown. An existing device is refused unless `reissue` is set: issuing
 * again replaces its credentials, so the agent already running with the old ones stops working.
 */
export function identityRoutes(app: FastifyInstance): void {
  app.withTypeProvider<ZodTypeProvider>().post(
    '/devices/:id/identity',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['enrollment'],
        summary: "Create a device and issue its identity (broker account, controller's key)",
        params: IdentityParams,
        body: IssueIdentity,
        response: { 201: IssuedIdentity },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { labels, group, reissue } = request.body;
      // Set on the /v1 scope by enrollRoute; none means a device gets its record only.
      const issuers = request.server.credentialIssuers ?? [];
      const issued = await commitChange(request, async (tx) => {
        if (group !== undefined && !(await tx.group.count({ where: { name: group } }))) {
          throw notFound(`group ${group}`);
        }
        const existing = await tx.device.findUnique({ where: { id } });
        if (existing && !reissue) {
          throw conflict(`device ${id} exists: remove it first, or reissue its identity`);
        }
        if (existing) {
          if (!(await patchLabels(tx, id, labels))) throw notFound(`device ${id}`);
        } else {
          await tx.device.create({ data: { id, labels } });
        }
        const device = await tx.device.findUniqueOrThrow({ where: { id } });
        if (group !== undefined) {
          await tx.groupMember.upsert({
            where: { groupName_deviceId: { groupName: group, deviceId: id } },
            create: { groupName: group, deviceId: id },
            update: {},
          });
        }
        const deviceLabels = device.labels as Record<string, string>;
        const credentials = await issueCredentials(
          issuers,
          { id, labels: deviceLabels, group: group ?? null },
          tx,
        );
        return {
          result: {
            device: deviceView(device, await complianceOf(tx, id)),
            credentials,
            created: !existing,
          },
          audit: {
            action: existing ? 'device.identity.reissue' : 'device.identity.issue',
            target: `device/${id}`,
            // Which issuers gave what, never what they gave.
            details: {
              labels: deviceLabels,
              group: group ?? null,
              issued: Object.keys(credentials),
            },
          },
          fleet: `device/${id}: ${existing ? 'identity reissued' : 'enrolled'}`,
        };
      });
      return reply.code(201).send(issued);
    },
  );
}
