/**
 * Find and remove what crashed or forgotten sandboxes left behind: every container, network,
 * volume and image carrying the agentbox labels (creator and sandbox id) and this owner's label
 * (other users' and programs' sandboxes on a shared daemon are left alone unless `all` is set,
 * or the sandbox is named by id). A dry run only lists.
 */
import type { SweepOptions as CoreSweepOptions, SweepReport, SweptSandbox } from '@agentbox/core';
import { parseArgument } from '@agentbox/core/backend';
import { connectDocker, dockerEnv, dockerError, pingDaemon, statusOf } from './client.js';
import { type DockerConnection, DockerConnectionSchema, type DockerResolvedConfig } from './config.js';
import { defaultOwner, LABEL, labelFilter } from './labels.js';

export interface SweepOptions {
  /** List only; remove nothing. */
  dryRun?: boolean;
  /** Only objects created at least this long ago (by their `agentbox.created` label). */
  olderThanMs?: number;
  /** Only objects of this sandbox (whoever owns it). */
  sandboxId?: string;
  /** Whose sandboxes: default `user@host` of this process (the owner label sandboxes are opened with). */
  owner?: string;
  /** Every owner's sandboxes, and those created before owner labels existed. Default false. */
  all?: boolean;
  /** Only objects that also carry these labels (e.g. the caller's policy labels). */
  labels?: Readonly<Record<string, string>>;
  /** Which daemon (default: DOCKER_HOST, else the default socket). */
  docker?: Partial<DockerConnection>;
}

export interface SweptObject {
  type: 'container' | 'network' | 'volume' | 'image';
  /** Docker id (volumes: the name). */
  id: string;
  name: string;
  sandboxId: string;
  role: string | undefined;
  createdAt: string | undefined;
}

export interface SweepResult {
  /** Everything that matched. */
  found: SweptObject[];
  /** What was removed (empty on a dry run). */
  removed: SweptObject[];
  /** What could not be removed, and why. */
  failed: { object: SweptObject; error: string }[];
  /** The daemon swept, e.g. `unix:///var/run/docker.sock`. */
  address: string;
}

export async function sweepDocker(options: SweepOptions = {}): Promise<SweepResult> {
  const context = { backend: 'docker', operation: 'sweep' };
  const conn = parseArgument(DockerConnectionSchema, options.docker ?? {}, {
    what: 'docker connection',
    prefix: 'docker',
    context,
  });
  const client = connectDocker(conn, dockerEnv(), context);
  await pingDaemon(client, Math.min(conn.requestTimeoutMs, 10_000), context);
  const { docker } = client;
  const byOwner: Record<string, string> =
    options.all || options.sandboxId !== undefined ? {} : { [LABEL.owner]: options.owner ?? defaultOwner() };
  const filters = labelFilter(options.sandboxId, { ...options.labels, ...byOwner });
  const cutoff = options.olderThanMs === undefined ? undefined : Date.now() - options.olderThanMs;
  const object = (
    type: SweptObject['type'],
    id: string,
    name: string,
    labels: Record<string, string> | undefined,
  ): SweptObject => ({
    type,
    id,
    name,
    sandboxId: labels?.[LABEL.sandboxId] ?? '',
    role: labels?.[LABEL.role],
    createdAt: labels?.[LABEL.created],
  });
  let found: SweptObject[];
  try {
    const [containers, networks, volumes, images] = await Promise.all([
      docker.listContainers({ all: true, filters }),
      docker.listNetworks({ filters }),
      docker.listVolumes({ filters }),
      docker.listImages({ filters }),
    ]);
    found = [
      ...containers.map((c) => object('container', c.Id, (c.Names[0] ?? c.Id).replace(/^\//, ''), c.Labels)),
      ...networks.map((n) => object('network', n.Id, n.Name, n.Labels)),
      ...(volumes.Volumes ?? []).map((v) => object('volume', v.Name, v.Name, v.Labels ?? undefined)),
      ...images.map((i) => object('image', i.Id, i.RepoTags?.[0] ?? i.Id, i.Labels ?? undefined)),
    ];
  } catch (error) {
    throw dockerError(error, context, client.address);
  }
  if (cutoff !== undefined) {
    // Objects without a readable creation time are kept: a sweep never guesses an age.
    found = found.filter((o) => o.createdAt !== undefined && Date.parse(o.createdAt) <= cutoff);
  }
  const result: SweepResult = { found, removed: [], failed: [], address: client.address };
  if (options.dryRun) return result;
  // Containers first: networks and volumes in use cannot go before them.
  for (const type of ['container', 'network', 'volume', 'image'] as const) {
    await Promise.all(
      found
        .filter((o) => o.type === type)
        .map(async (o) => {
          try {
            if (type === 'container') await docker.getContainer(o.id).remove({ force: true, v: true });
            else if (type === 'network') await docker.getNetwork(o.id).remove();
            else if (type === 'volume') await docker.getVolume(o.id).remove();
            else await docker.getImage(o.id).remove({ force: true });
            result.removed.push(o);
          } catch (error) {
            if (statusOf(error) === 404) result.removed.push(o);
            else result.failed.push({ object: o, error: dockerError(error, context).message });
          }
        }),
    );
  }
  return result;
}

/** The definition's sweep: `sweepDocker` for each asked id (or all), grouped by sandbox. */
export async function sweepDockerSandboxes(
  options: CoreSweepOptions<DockerResolvedConfig>,
): Promise<SweepReport> {
  const ids = options.ids ?? [undefined];
  const sandboxes = new Map<string, SweptSandbox>();
  let address = '';
  for (const sandboxId of ids) {
    options.signal?.throwIfAborted();
    const result = await sweepDocker({
      dryRun: options.dryRun,
      olderThanMs: options.olderThanMs,
      sandboxId,
      labels: options.labels,
      ...(options.config.owner ? { owner: options.config.owner } : {}),
      all: options.all ?? false,
      docker: options.config.docker,
    });
    address = result.address;
    const failed = new Map(result.failed.map((f) => [f.object, f.error]));
    const removed = new Set(result.removed);
    for (const object of result.found) {
      const swept = sandboxes.get(object.sandboxId) ?? {
        id: object.sandboxId,
        createdAt: object.createdAt,
        resources: [],
        removed: !options.dryRun,
      };
      sandboxes.set(object.sandboxId, swept);
      swept.resources.push({ type: object.type, name: object.name });
      if (object.createdAt && (!swept.createdAt || object.createdAt < swept.createdAt))
        swept.createdAt = object.createdAt;
      if (!removed.has(object)) swept.removed = false;
      const error = failed.get(object);
      if (error)
        swept.error = [swept.error, `${object.type} ${object.name}: ${error}`].filter(Boolean).join('; ');
    }
  }
  return {
    location: `on the Docker daemon at ${address || 'DOCKER_HOST or the default socket'}`,
    sandboxes: [...sandboxes.values()].sort((a, b) => a.id.localeCompare(b.id)),
  };
}
