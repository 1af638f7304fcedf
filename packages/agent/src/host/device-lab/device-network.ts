import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostRun } from './lab-cache.js';

/**
 * A device's link to the host: a veth pair, one end on the host with `hostAddress`, the other
 * moved into the device's network namespace as `host0` (nspawn's name for it) with `address`.
 * The device reaches what the test runs on the host (a broker, a registry) at `hostAddress`, and
 * nothing else: there is no route out.
 *
 * Not nspawn's own --network-veth or --network-interface: without udev on the host nspawn refuses
 * a moved interface ("Network interface … is not initialized yet"), and --network-veth names the
 * host end after the machine, shortened. The pair is created after nspawn started and the device
 * end moved into the leader's namespace; when that namespace goes (poweroff, a killed device), the
 * kernel deletes both ends.
 */
export interface DeviceLink {
  /** The host's end, e.g. `pfh-4242-1`. */
  hostInterface: string;
  hostAddress: string;
  address: string;
}

const SUBNET = '10.213';
const DEVICE_INTERFACE = 'host0';

/**
 * The addresses of device `index` of the test process `pid`: a /30 of 10.213.0.0/16 (64 devices
 * per process, processes spread by pid), the same on every boot of the device.
 */
export function deviceLink(pid: number, index: number): DeviceLink {
  const block = ((pid % 1024) * 64 + (index % 64)) % 16384;
  const base = block * 4;
  const octets = (offset: number) => `${SUBNET}.${(base + offset) >> 8}.${(base + offset) & 255}`;
  return {
    hostInterface: `pfh-${pid}-${index}`,
    hostAddress: octets(1),
    address: octets(2),
  };
}

/** Creates the pair, moves the device's end into the namespace of `leader`, addresses both. */
export async function connectDevice(link: DeviceLink, leader: number): Promise<void> {
  const peer = link.hostInterface.replace(/^pfh/, 'pfd');
  await ip(['link', 'add', link.hostInterface, 'type', 'veth', 'peer', 'name', peer]);
  try {
    await ip(['link', 'set', peer, 'netns', String(leader)]);
    await ip(['addr', 'add', `${link.hostAddress}/30`, 'dev', link.hostInterface]);
    await ip(['link', 'set', link.hostInterface, 'up']);
    const inside = ['nsenter', '-t', String(leader), '-n', 'ip'];
    await run([...inside, 'link', 'set', peer, 'name', DEVICE_INTERFACE]);
    await run([...inside, 'addr', 'add', `${link.address}/30`, 'dev', DEVICE_INTERFACE]);
    await run([...inside, 'link', 'set', DEVICE_INTERFACE, 'up']);
    await run([...inside, 'link', 'set', 'lo', 'up']);
  } catch (error) {
    await ip(['link', 'del', link.hostInterface]).catch(() => undefined);
    throw error;
  }
}

/** Waits until the host's end of a link is gone (after its device's namespace went). */
export async function untilLinkGone(link: DeviceLink, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (existsSync(`/sys/class/net/${link.hostInterface}`)) {
    if (Date.now() > deadline)
      throw new Error(`${link.hostInterface}: still there after its device`);
    await sleep(20);
  }
}

/**
 * Host ends left by test processes that are gone (their pid is in the name): a device killed
 * before its end moved in leaves the whole pair behind.
 */
export async function removeStaleLinks(alive: (pid: number) => boolean): Promise<string[]> {
  const stale = (await readdir('/sys/class/net')).filter((name) => {
    const owner = /^pf[hd]-(\d+)-\d+$/.exec(name)?.[1];
    return owner !== undefined && !alive(Number(owner));
  });
  for (const name of stale) await ip(['link', 'del', name]).catch(() => undefined);
  return stale;
}

const ip = (args: string[]) => run(['ip', ...args]);
const run = (argv: string[]) => hostRun(argv, 10_000);
