import { MemoryHost, type MemoryHostOptions } from '../host/memory-host.js';
import type { ImageBehaviour } from '../host/memory-images.js';

/**
 * How a failing simulated device's new images behave: the app exits before it is ready and its
 * healthcheck fails, whatever the notify mode, so the gate fails fast and the agent rolls back.
 */
const NEVER_READY: ImageBehaviour = { crashAfterMs: 200, neverReady: true, unhealthy: true };

/** `…crash-after-30s…` in an image reference: see SimHost. */
const CRASH_AFTER = /crash-after-(\d{1,5})s/;

/**
 * A simulated device's host: a MemoryHost whose registry has every image a manifest names (the
 * simulator has no registry to push to). On a failing device, images that arrive after its
 * first successful apply of a service never become ready; so do, on every device, images whose reference
 * contains --bad-image. An image whose reference contains `crash-after-Ns` (a tag such as
 * `web:1.1-crash-after-30s`) starts and becomes ready, then its app exits N seconds later, once:
 * systemd restarts it (Restart=on-failure, the default) and it stays up, so the device reports
 * restarts + 1 and a new activeSince — a crash after start that only a bake longer than N sees
 * (with ready.settle above N, the agent's own gate sees it and rolls back).
 */
export class SimHost extends MemoryHost {
  /** Set once the device has applied a manifest: from then on new images fail. */
  failNewImages = false;

  constructor(
    options: MemoryHostOptions,
    private readonly failing: boolean,
    /** Images whose reference contains this never become ready on any device (a bad release). */
    private readonly badImage?: string,
  ) {
    super(options);
  }

  override async pullImage(reference: string): Promise<string> {
    try {
      this.images.remoteId(reference);
    } catch {
      const bad =
        (this.failing && this.failNewImages) ||
        (this.badImage !== undefined && reference.includes(this.badImage));
      this.images.push(reference, bad ? NEVER_READY : behaviourOf(reference));
    }
    return super.pullImage(reference);
  }
}

function behaviourOf(reference: string): ImageBehaviour {
  const crash = CRASH_AFTER.exec(reference);
  return crash ? { crashOnceAfterReadyMs: Number(crash[1]) * 1000 } : {};
}
