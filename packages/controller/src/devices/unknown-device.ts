import type { Prisma } from '../db/client.js';
import type { HttpError } from '../http/errors.js';
import { notFoundNear } from '../http/close-names.js';

/**
 * The 404 for a device id nobody registered, naming the registered ids close to it. Only ids are
 * read, and only on this path: 10,000 ids are a few hundred kilobytes, once per typo.
 */
export async function unknownDevice(
  db: Pick<Prisma.TransactionClient, 'device'>,
  id: string,
): Promise<HttpError> {
  const rows = await db.device.findMany({ select: { id: true } });
  return notFoundNear(
    `device ${id}`,
    rows.map((row) => row.id),
    id,
  );
}
