/**
 * Freezing and resuming a sandbox container (cgroup freezer, through Docker's pause API).
 *
 * Docker keeps a container's paused flag from two sources: the pause and unpause calls, and
 * containerd's events, which under load can be handled after the next call. So for a moment the
 * flag can say paused while the container runs, or running while it is frozen, and Docker answers
 * "already paused" or "not paused" from it. Such an answer is asked again, never taken as done: a
 * checkpoint must not read a tree that still runs, nor leave a sandbox frozen.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorContext } from '@agentbox/core/backend';
import type Docker from 'dockerode';
import { dockerError } from './client.js';

/** Tries at each call, and the wait before the next (times the attempt). */
const TRIES = 3;
const LAG_MS = 50;
const FREEZER_MS = 100;

function messageOf(error: unknown): string {
  return String((error as Error)?.message);
}

/**
 * Pause the container; true once a pause call of this one succeeded. False when the freezer
 * keeps failing (a tight fork loop can win its race) or Docker keeps calling it paused already.
 */
export async function freeze(container: Docker.Container, context: ErrorContext): Promise<boolean> {
  for (let attempt = 1; attempt <= TRIES; attempt++) {
    try {
      await container.pause();
      return true;
    } catch (error) {
      const message = messageOf(error);
      if (/already paused/i.test(message)) {
        // A flag lagging an unpause over a running container, or a pause that is not ours (a
        // checkpoint by another handle of this sandbox): neither is a freeze of ours to read under,
        // nor one of ours to end. Ask again. (One left by a crash is resumed on re-attach.)
        await sleep(LAG_MS * attempt);
        continue;
      }
      if (!/freeze/i.test(message)) throw dockerError(error, context);
      await sleep(FREEZER_MS * attempt);
    }
  }
  return false;
}

/** Unpause the container: a sandbox left paused would refuse every command. */
export async function resume(container: Docker.Container, context: ErrorContext): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await container.unpause();
      return;
    } catch (error) {
      const notPaused = /not paused/i.test(messageOf(error));
      // "Not paused" may be the flag lagging a pause (the container frozen all the same): it is
      // believed only once it is still the answer after the last wait.
      if (attempt >= TRIES) {
        if (notPaused) return;
        throw dockerError(error, context);
      }
      await sleep(notPaused ? LAG_MS * attempt : 200);
    }
  }
}
