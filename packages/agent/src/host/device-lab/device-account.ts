import type { AgentAccount } from '../../install/agent-unit-file.js';
import type { LabDevice } from './lab-device.js';

/** A non-root account in a device, as an operator makes one for user-scope services. */
export interface DeviceAccount extends AgentAccount {
  gid: number;
  home: string;
}

/**
 * `useradd --create-home`, as on any Debian device. Shadow's useradd also gives the account 65536
 * subordinate uids and gids (/etc/subuid, /etc/subgid), which rootless Podman maps with
 * newuidmap/newgidmap (the uidmap package); without them Podman runs but every image with files
 * owned by another uid fails to unpack. Lingering is the agent's business (its unit sets it).
 */
export async function addDeviceAccount(device: LabDevice, name: string): Promise<DeviceAccount> {
  await device.exec(['useradd', '--create-home', '--shell', '/bin/bash', name]);
  const ids = (await device.exec(['id', '-u', name])) + (await device.exec(['id', '-g', name]));
  const [uid, gid] = ids.trim().split(/\s+/).map(Number);
  if (!uid || !gid) throw new Error(`useradd ${name}: no uid/gid in ${ids.trim()}`);
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const lines = await device.exec(['cat', file]);
    if (!lines.split('\n').some((line) => line.startsWith(`${name}:`))) {
      throw new Error(`useradd ${name}: no subordinate ids in ${file}`);
    }
  }
  const home = (await device.exec(['getent', 'passwd', name])).split(':')[5] ?? '';
  return { name, uid, gid, home };
}

/**
 * argv as the account, with what its login's pam_systemd would set (HOME, the runtime directory,
 * the user bus) but no login: setpriv goes through no PAM, so logind sees no session.
 */
export function asAccount(account: DeviceAccount, argv: readonly string[]): string[] {
  return [
    'setpriv', `--reuid=${account.uid}`, `--regid=${account.gid}`, '--init-groups',
    'env', `HOME=${account.home}`, `USER=${account.name}`,
    `XDG_RUNTIME_DIR=/run/user/${account.uid}`,
    `DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/${account.uid}/bus`,
    ...argv,
  ]; // prettier-ignore
}
