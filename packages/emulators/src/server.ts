/** What every emulator's server does the same way: listen on loopback, and remove what it made. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { INSTANCE_LABEL } from './docker.js';

/** Listen (127.0.0.1 and any free port unless told) and return the base URL. */
export async function listenLocal(server: Server, port = 0, host = '127.0.0.1'): Promise<string> {
  // Clients keep connections alive between calls; closing an idle one just as a client reuses it
  // resets that request (Node's default is 5 s), so idle connections are kept well past that.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shown}:${address.port}`;
}

/** Work still under way (requests being handled, pods being started), so close can wait for it. */
export class InFlight {
  readonly #running = new Set<Promise<unknown>>();
  get size(): number {
    return this.#running.size;
  }
  track<T>(work: Promise<T>): Promise<T> {
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work)).catch(() => {});
    return work;
  }
  /**
   * Resolves once nothing is running (work started while waiting included), or after `limitMs`:
   * a request may wait on a command that only ends with its container.
   */
  async settled(limitMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, limitMs);
    });
    const drained = (async () => {
      while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
    })();
    await Promise.race([drained, limit]);
    clearTimeout(timer);
  }
}

/**
 * Stop serving, then remove every container, volume and image of this emulator instance (after
 * `removeAlso`, what the emulator itself keeps of them): once (which ends the commands requests
 * may be waiting on), and again after the requests under way have finished, for a container one
 * of them was still making.
 */
export async function closeAndRemoveOwned(
  server: Server,
  docker: Docker,
  instance: string,
  work?: InFlight,
  removeAlso?: () => Promise<void>,
): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const sweep = async () => {
    await removeAlso?.();
    await removeOwned(docker, instance);
  };
  await sweep();
  if (!work) return;
  await work.settled();
  await sweep();
}

/** Remove every container, volume and image of this emulator instance (found by its instance label). */
export async function removeOwned(docker: Docker, instance: string): Promise<void> {
  const mine = { label: [`${INSTANCE_LABEL}=${instance}`] };
  const containers = await docker.listContainers({ all: true, filters: mine });
  await Promise.all(
    containers.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
  // A pod's volumes (the kubernetes emulator's) go once their containers have.
  const { Volumes: volumes } = await docker.listVolumes({ filters: mine });
  await Promise.all(
    (volumes ?? []).map((v) =>
      docker
        .getVolume(v.Name)
        .remove()
        .catch(() => {}),
    ),
  );
  const images = await docker.listImages({ filters: mine });
  await Promise.all(
    images.map((i) =>
      docker
        .getImage(i.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  );
}
