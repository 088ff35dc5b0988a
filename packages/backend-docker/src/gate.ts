/**
 * The pause gate of one sandbox container. A checkpoint or a rollback holds it exclusively and
 * pauses the container (cgroup freezer) while the helper reads or rewrites the tree, so no
 * sandbox process runs meanwhile. Every Docker call that needs the container running or touches
 * its tree (an exec's create and start, an archive read or write) holds it shared, for that one
 * call only: a paused container refuses execs, and a write must not land mid-checkpoint.
 *
 * Shared holders never take the gate again while holding it, and nothing waits on a session
 * while the container is paused, so there is no cycle to deadlock on. A pending exclusive holder
 * goes before later shared ones, so a stream of execs cannot starve a checkpoint.
 */
export class PauseGate {
  #shared = 0;
  #sharedDone: (() => void) | undefined;
  /** Settles when the current (or queued) exclusive holder is done; shared callers wait on it. */
  #exclusive: Promise<void> | undefined;
  /** Exclusive holders, one after the other. */
  #queue: Promise<unknown> = Promise.resolve();

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.#exclusive) await this.#exclusive;
    this.#shared++;
    try {
      return await fn();
    } finally {
      this.#shared--;
      if (this.#shared === 0) this.#sharedDone?.();
    }
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(async () => {
      let release!: () => void;
      const done = new Promise<void>((resolve) => {
        release = resolve;
      });
      this.#exclusive = done;
      try {
        while (this.#shared > 0)
          await new Promise<void>((resolve) => {
            this.#sharedDone = resolve;
          });
        this.#sharedDone = undefined;
        return await fn();
      } finally {
        if (this.#exclusive === done) this.#exclusive = undefined;
        release();
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}
