import { readFile } from 'node:fs/promises';
import { onRollback, type Transaction } from '../audit/change.js';
import type { PrismaClient } from '../db/client.js';
import { mosquittoPasswordHash } from './mosquitto-password.js';
import { passwordFileUsers, renderPasswordFile, replaceFile } from './password-file.js';

export interface MosquittoAccessOptions {
  /** The password file Mosquitto reads (`password_file` in mosquitto.conf). */
  passwordFile: string;
  /** Makes Mosquitto read its files again (SIGHUP to its pid; see signalReload). */
  reload: () => Promise<void>;
  /** Accounts that are not devices, in the file besides them: the controller's own, from MQTT_URL. */
  accounts?: readonly { username: string; password: string }[];
  /** A password file of further accounts not managed here (monitoring, bridges), copied as is. */
  baseFile?: string;
}

// Enrollments and revocations on any controller write the file one at a time, each from the
// rows it sees after the previous one committed.
const FILE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('podfleet.broker_credentials'))";

/**
 * Device accounts on a Mosquitto broker through its password file: the file is written from the
 * broker_credentials rows (plus the controller's and the base file's accounts) and Mosquitto is
 * told to reload it. What each account may touch is deploy/mosquitto/acl's `pattern` rules on
 * `%u` (a device's username is its id), so the ACL file never changes. Mosquitto 2.0 disconnects a
 * client whose account went away when it reloads (docs/decisions/005-broker-credentials.md).
 */
export class MosquittoAccess {
  private readonly accountHashes: { username: string; hash: string }[];

  constructor(private readonly options: MosquittoAccessOptions) {
    this.accountHashes = (options.accounts ?? []).map(({ username, password }) => ({
      username,
      hash: mosquittoPasswordHash(password),
    }));
  }

  /** Usernames a device may not take: they belong to accounts that are not devices. */
  async reservedUsernames(): Promise<Set<string>> {
    return new Set([
      ...this.accountHashes.map((a) => a.username),
      ...passwordFileUsers(await this.baseText()),
    ]);
  }

  /**
   * Writes the file from what `tx` sees and reloads the broker, inside commitChange's transaction
   * that adds or removes an account: if the file or the reload fails, the change is rolled back.
   * The file is written before the commit, so whenever the transaction rolls back (this reload
   * failed, or a later step, or the commit), the file is written again from the committed rows:
   * a device whose deletion failed keeps its account, one whose enrollment failed gets none.
   */
  async apply(tx: Transaction): Promise<void> {
    onRollback(tx, (prisma) => this.sync(prisma));
    await this.write(tx);
  }

  /**
   * Writes the file from the database now: at controller start, and after a rolled-back change.
   * The file is written even when the reload then fails; the broker reads it at its next reload.
   */
  sync(prisma: PrismaClient): Promise<void> {
    return prisma.$transaction((tx) => this.write(tx), { maxWait: 10_000, timeout: 20_000 });
  }

  private async write(tx: Transaction): Promise<void> {
    await tx.$executeRawUnsafe(FILE_LOCK);
    const rows = await tx.brokerCredential.findMany({
      select: { deviceId: true, passwordHash: true },
    });
    const reserved = await this.reservedUsernames();
    const devices = rows
      .filter((row) => !reserved.has(row.deviceId))
      .map((row) => ({ username: row.deviceId, hash: row.passwordHash }));
    const text = (await this.baseText()) + renderPasswordFile([...this.accountHashes, ...devices]);
    await replaceFile(this.options.passwordFile, text);
    await this.options.reload();
  }

  private async baseText(): Promise<string> {
    if (!this.options.baseFile) return '';
    const text = await readFile(this.options.baseFile, 'utf8');
    return text.endsWith('\n') || text === '' ? text : `${text}\n`;
  }
}

/**
 * Mosquitto reloads its password and ACL files on SIGHUP (mosquitto(8), "SIGNALS"): the pid comes
 * from the file its `pid_file` option names, read at every reload (the broker may have restarted).
 */
export function signalReload(pidFile: string): () => Promise<void> {
  return async () => {
    const text = await readFile(pidFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new Error(`broker pid file ${pidFile}: ${error.code ?? error.message}`);
    });
    const pid = Number(text.trim());
    // 1 is allowed: in a container Mosquitto is its namespace's first process (docker-compose.yml).
    if (!Number.isSafeInteger(pid) || pid < 1) {
      throw new Error(`broker pid file ${pidFile}: not a pid: ${JSON.stringify(text.trim())}`);
    }
    try {
      process.kill(pid, 'SIGHUP');
    } catch (error) {
      throw new Error(
        `reloading the broker (pid ${pid}): ${(error as NodeJS.ErrnoException).code}`,
      );
    }
  };
}
