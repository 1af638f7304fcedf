import { startManagedMosquitto } from '../broker-access/testing.js';

export interface MosquittoInstance {
  /** The devices' listener. */
  url: string;
  /** The controllers' listener: only the `podfleet-controller…` accounts of `users` log in. */
  controllerUrl: string;
  stop(): Promise<void>;
}

/**
 * A private Mosquitto on free loopback ports, configured with deploy/mosquitto's config and ACL:
 * every account of `users` on the devices' listener (as the controller writes that file, with its
 * own account in it), and those named `podfleet-controller…` on the controllers' listener too —
 * the deployment's broker rules, run for real in a test.
 */
export async function startMosquitto(users: Record<string, string>): Promise<MosquittoInstance> {
  const controllers = Object.fromEntries(
    Object.entries(users).filter(([username]) => username.startsWith('podfleet-controller')),
  );
  const broker = await startManagedMosquitto(() => '', { controllers, devices: users });
  return { url: broker.url, controllerUrl: broker.controllerUrl, stop: () => broker.stop() };
}
