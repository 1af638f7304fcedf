import { createHash } from 'node:crypto';

/** How a container from an image behaves once started; the default is a well-behaved app. */
export interface ImageBehaviour {
  /** The app never sends READY=1 (matters under --sdnotify=container/healthy; conmon notifies anyway). */
  neverReady?: boolean;
  /** The main process exits with status 1 this long after the container starts. */
  crashAfterMs?: number;
  /**
   * The main process exits with status 1 this long after the unit becomes active, once per
   * `systemctl start`/`restart`: systemd's automatic restart (Restart=) then stays up.
   */
  crashOnceAfterReadyMs?: number;
  /** The healthcheck fails. */
  unhealthy?: boolean;
  /** When the app is ready (and its healthcheck first passes) after the container starts. */
  readyAfterMs?: number;
}

/**
 * Podman's local image storage plus the registry it pulls from. Images are content: each build or
 * push makes a new id, and references (tags) point at ids and can be moved.
 */
export class MemoryImageStore {
  private readonly behaviours = new Map<string, ImageBehaviour>();
  private readonly local = new Map<string, string>();
  private readonly registry = new Map<string, string>();
  private readonly unreachable = new Set<string>();
  private built = 0;

  constructor(private readonly seed = 'memory-host') {}

  /** Builds a new image and pushes it under `reference`, moving the registry's tag. */
  push(reference: string, behaviour: ImageBehaviour = {}): string {
    const id = this.create(behaviour);
    this.registry.set(reference, id);
    return id;
  }

  /** Builds a new image into local storage only (`podman build -t`, `podman load`). */
  build(reference: string, behaviour: ImageBehaviour = {}): string {
    const id = this.create(behaviour);
    this.local.set(reference, id);
    return id;
  }

  /** Makes pulls of `reference` fail as if the registry could not be reached. */
  failPulls(reference: string, fail = true): void {
    if (fail) this.unreachable.add(reference);
    else this.unreachable.delete(reference);
  }

  /** `podman pull`: copies the registry's image into local storage and tags it. */
  pull(reference: string): string {
    const id = this.remoteId(reference);
    this.local.set(reference, id);
    return id;
  }

  /** The id the registry serves for a reference; throws like `podman pull` when it cannot. */
  remoteId(reference: string): string {
    if (this.unreachable.has(reference)) {
      throw new Error(
        `initializing source docker://${reference}: pinging container registry: connection refused`,
      );
    }
    const id = this.registry.get(reference);
    if (!id) throw new Error(`initializing source docker://${reference}: manifest unknown`);
    return id;
  }

  localId(reference: string): string | undefined {
    return this.local.get(reference);
  }

  tag(id: string, reference: string): void {
    if (!this.behaviours.has(id)) throw new Error(`${id}: image not known`);
    this.local.set(reference, id);
  }

  /** The manifest digest of a local image (by id or reference): derived from its id here. */
  digestOf(image: string): string | undefined {
    const id = this.behaviours.has(image) ? image : this.local.get(image);
    if (id === undefined) return undefined;
    return `sha256:${createHash('sha256').update(`manifest/${id}`).digest('hex')}`;
  }

  behaviourOf(id: string): ImageBehaviour {
    return this.behaviours.get(id) ?? {};
  }

  private create(behaviour: ImageBehaviour): string {
    const id = createHash('sha256').update(`${this.seed}/image/${this.built++}`).digest('hex');
    this.behaviours.set(id, { ...behaviour });
    return id;
  }
}
