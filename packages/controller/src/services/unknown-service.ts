import type { Prisma } from '../db/client.js';
import type { HttpError } from '../http/errors.js';
import { notFoundNear } from '../http/close-names.js';

/** The 404 for a service nobody applied, naming the services close to it. */
export async function unknownService(
  db: Pick<Prisma.TransactionClient, 'service'>,
  name: string,
): Promise<HttpError> {
  const rows = await db.service.findMany({ select: { name: true } });
  return notFoundNear(
    `service ${name}`,
    rows.map((row) => row.name),
    name,
  );
}
