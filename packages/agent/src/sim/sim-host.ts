import { MemoryHost, type MemoryHostOptions } from '../host/memory-host.js';
import type { ImageBehaviour } from '../host/memory-images.js';

/**
 * How a failing simulated device's new images behave: the app exits before it is ready and its
 * healthcheck fails, whatever the notify mode, so the gate fails fast and the agent rolls back.
 */
const NEVER_READY: ImageBehaviour = { crashAfterMs: 200, neverReady: true, unhealthy: true };

/**
 * A simulated device's host: a MemoryHost whose registry has every image a manifest names (the
 * simulator has no registry to push to). On a failing device, images that arrive after the
 * first successful apply never become ready.
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
      this.images.push(reference, bad ? NEVER_READY : {});
    }
    return super.pullImage(reference);
  }
}
