/**
 * What an open learns once and need not ask again: that a daemon answers (for a minute), that an
 * image is on it, what the sandbox image says about a user (uid, gid, where `setsid` is, that
 * no tool is missing), and that the user may run execute-only programs there. Keyed by the
 * daemon's address; probes by image id, which names the image's content, so a tag moved to
 * another image is probed again. Kept for this process.
 */

/** How long a daemon that answered a ping counts as answering. */
const PING_FRESH_MS = 60_000;

export interface ProbedUser {
  uid: number;
  gid: number;
  setsid: string;
}

export class DaemonFacts {
  readonly #pinged = new Map<string, number>();
  readonly #images = new Set<string>();
  readonly #probes = new Map<string, ProbedUser>();
  readonly #executeOnly = new Set<string>();

  /** Ping `address` unless it answered within the last minute. */
  async ping(address: string, ping: () => Promise<void>): Promise<void> {
    const at = this.#pinged.get(address);
    if (at !== undefined && performance.now() - at < PING_FRESH_MS) return;
    await ping();
    this.#pinged.set(address, performance.now());
  }

  /** Make sure `image` is on the daemon (ensure() once; again after forget()). */
  async image(address: string, image: string, ensure: () => Promise<void>): Promise<void> {
    const key = `${address}\n${image}`;
    if (this.#images.has(key)) return;
    await ensure();
    this.#images.add(key);
  }

  /** The image went missing (a create answered 404): ensure it again next time. */
  forgetImage(address: string, image: string): void {
    this.#images.delete(`${address}\n${image}`);
  }

  /** What `probe()` said about `user` in image `imageId`, probed once. */
  async probe(
    address: string,
    imageId: string,
    user: string,
    probe: () => Promise<ProbedUser>,
  ): Promise<ProbedUser> {
    const key = `${address}\n${imageId}\n${user}`;
    const known = this.#probes.get(key);
    if (known) return known;
    const probed = await probe();
    this.#probes.set(key, probed);
    return probed;
  }

  /**
   * Whether `user` may run an execute-only copy of a program in image `imageId` under `runtime`
   * (gVisor refuses). Only a yes is kept: a no may have been a container that was going away.
   */
  async runsExecuteOnly(
    address: string,
    imageId: string,
    runtime: string,
    user: string,
    probe: () => Promise<boolean>,
  ): Promise<boolean> {
    const key = `${address}\n${imageId}\n${runtime}\n${user}`;
    if (this.#executeOnly.has(key)) return true;
    const runs = await probe();
    if (runs) this.#executeOnly.add(key);
    return runs;
  }
}

/** One per process: every sandbox of the backend shares what is known about its daemons. */
export const daemonFacts = new DaemonFacts();
