/**
 * The control plane of the Modal emulator: auth tokens, apps, environments, images (a name is a
 * local Docker image, never pulled; a snapshot is a committed image), and sandboxes (V2 calls:
 * create, task id, router access, wait, terminate, list and tags).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type Docker from 'dockerode';
import { type CallContext, ServerError, Status } from 'nice-grpc';
import type { EmulatorAuth } from './auth.js';
import { type ImageRecord, modalLabels, type SandboxRecord } from './state.js';

/** GenericResult statuses (modal.client.GenericResult.GenericStatus). */
const SUCCESS = 1;
const FAILURE = 2;
const TERMINATED = 3;
/** NetworkAccess.NetworkAccessType. */
const BLOCKED = 2;
const ALLOWLIST = 3;
const DEFAULT_IMAGE_BUILDER_VERSION = '2025.06';

export interface ControlPlaneHost {
  auth: EmulatorAuth;
  docker: Docker;
  instance: string;
  images: Map<string, ImageRecord>;
  sandboxes: Map<string, SandboxRecord>;
  log(line: string): void;
  routerUrl(): string;
  register(sandbox: SandboxRecord): void;
  finish(sandbox: SandboxRecord, status: number, exception: string): Promise<void>;
}

type Request = Record<string, unknown>;
type Tag = { tagName: string; tagValue: string };

const newId = (prefix: string) => `${prefix}-${randomBytes(11).toString('hex')}`;

export function controlPlaneHandlers(host: ControlPlaneHost) {
  const { auth, docker, images, sandboxes } = host;
  const apps = new Map<string, string>();
  let lastCreatedAt = 0;

  // Every call but AuthTokenGet carries a valid auth token.
  const authed =
    <T>(fn: (request: Request, context: CallContext) => Promise<T>) =>
    async (request: Request, context: CallContext): Promise<T> => {
      auth.checkControlPlane(context, true);
      return fn(request, context);
    };

  const sandboxOf = (id: unknown): SandboxRecord => {
    const found = sandboxes.get(String(id));
    if (!found) throw new ServerError(Status.NOT_FOUND, `Sandbox ${String(id)} not found`);
    return found;
  };

  const taskResult = (sandbox: SandboxRecord) =>
    sandbox.finished ? { status: sandbox.finished.status, exception: sandbox.finished.exception } : undefined;

  const tagsOf = (sandbox: SandboxRecord): Tag[] =>
    Object.entries(sandbox.tags).map(([tagName, tagValue]) => ({ tagName, tagValue }));

  async function waitFinished(sandbox: SandboxRecord, seconds: number, signal: AbortSignal): Promise<void> {
    if (sandbox.finished || seconds <= 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sandbox.events.off('finished', done);
        resolve();
      };
      const timer = setTimeout(done, seconds * 1000);
      sandbox.events.on('finished', done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  return {
    async authTokenGet(_request: Request, context: CallContext) {
      auth.checkControlPlane(context, false);
      return { token: auth.sign('client') };
    },
    environmentGetOrCreate: authed(async (request) => ({
      environmentId: 'en-emulator',
      metadata: {
        name: String(request.deploymentName || 'main'),
        settings: { imageBuilderVersion: DEFAULT_IMAGE_BUILDER_VERSION, webhookSuffix: 'emulator' },
      },
    })),
    appGetOrCreate: authed(async (request) => {
      const name = String(request.appName);
      let appId = apps.get(name);
      if (!appId) {
        appId = newId('ap');
        apps.set(name, appId);
      }
      return { appId };
    }),
    imageGetOrCreate: authed(async (request) => {
      const image = (request.image ?? {}) as { dockerfileCommands?: string[] };
      const commands = image.dockerfileCommands ?? [];
      const from = /^FROM (\S+)$/.exec(commands[0] ?? '');
      if (!from || commands.length > 1) {
        host.log(`image build not emulated: ${JSON.stringify(commands)}`);
        return {
          imageId: newId('im'),
          result: { status: FAILURE, exception: 'modal emulator: only FROM <local image> is emulated' },
        };
      }
      const dockerImage = from[1]!;
      const exists = await docker
        .getImage(dockerImage)
        .inspect()
        .then(
          () => true,
          () => false,
        );
      if (!exists)
        return {
          imageId: newId('im'),
          result: {
            status: FAILURE,
            exception: `modal emulator: no local image ${dockerImage} (never pulled)`,
          },
        };
      const known = [...images.values()].find((i) => i.dockerImage === dockerImage && !i.snapshot);
      const id = known?.id ?? newId('im');
      if (!known) images.set(id, { id, dockerImage, snapshot: false });
      // The result inline: the SDK then skips ImageJoinStreaming.
      return { imageId: id, result: { status: SUCCESS } };
    }),
    imageFromId: authed(async (request) => {
      const image = images.get(String(request.imageId));
      if (!image) throw new ServerError(Status.NOT_FOUND, `Image ${String(request.imageId)} not found`);
      return { imageId: image.id };
    }),
    imageDelete: authed(async (request) => {
      const image = images.get(String(request.imageId));
      if (!image) throw new ServerError(Status.NOT_FOUND, `Image ${String(request.imageId)} not found`);
      images.delete(image.id);
      // Only committed snapshots are the emulator's to remove; a named local image stays.
      if (image.snapshot)
        await docker
          .getImage(image.dockerImage)
          .remove({ force: true })
          .catch(() => {});
      return {};
    }),
    sandboxCreateV2: authed(async (request) => {
      const definition = (request.definition ?? {}) as Record<string, unknown>;
      const image = images.get(String(definition.imageId));
      if (!image) throw new ServerError(Status.NOT_FOUND, `Image ${String(definition.imageId)} not found`);
      const network = definition.networkAccess as { networkAccessType?: number } | undefined;
      if (network?.networkAccessType === ALLOWLIST) {
        host.log('network allowlists are not emulated');
        throw new ServerError(Status.UNIMPLEMENTED, 'modal emulator: outbound allowlists are not emulated');
      }
      const resources = (definition.resources ?? {}) as { milliCpu?: number; memoryMb?: number };
      // 24 characters: a V1 id has 22, and the SDK tells the two apart by shape.
      const id = `sb-${randomBytes(12).toString('hex')}`;
      const taskId = newId('ta');
      const env: Record<string, string> = {};
      for (const source of (request.secretSources as { env?: { contents?: Record<string, string> } }[]) ?? [])
        Object.assign(env, source.env?.contents ?? {});
      const container = await docker.createContainer({
        Image: image.dockerImage,
        Cmd: ['sleep', '2147483647'],
        Labels: modalLabels(host.instance, id),
        HostConfig: {
          // An init that reaps orphans, as Modal's sandboxes have: a killed tree leaves no zombies.
          Init: true,
          NetworkMode: network?.networkAccessType === BLOCKED ? 'none' : 'bridge',
          ...(resources.milliCpu ? { NanoCpus: resources.milliCpu * 1e6 } : {}),
          ...(resources.memoryMb ? { Memory: resources.memoryMb * 1024 * 1024 } : {}),
        },
      });
      await container.start();
      lastCreatedAt = Math.max(Date.now() / 1000, lastCreatedAt + 0.001);
      const tags: Record<string, string> = {};
      for (const tag of (request.tags as Tag[]) ?? []) tags[tag.tagName] = tag.tagValue;
      const sandbox: SandboxRecord = {
        id,
        taskId,
        appId: String(request.appId),
        imageId: image.id,
        createdAt: lastCreatedAt,
        tags,
        timeoutSecs: Number(definition.timeoutSecs) || 300,
        idleTimeoutSecs: definition.idleTimeoutSecs ? Number(definition.idleTimeoutSecs) : undefined,
        workdir: (definition.workdir as string | undefined) || undefined,
        env,
        container,
        routerJwt: auth.sign(`task:${taskId}`),
        finished: undefined,
        execs: new Map(),
        lastActivity: Date.now(),
        timers: [],
        events: new EventEmitter(),
      };
      host.register(sandbox);
      host.log(`created sandbox ${id} from ${image.dockerImage}`);
      return {
        sandboxId: id,
        taskId,
        commandRouterAccess: { url: host.routerUrl(), jwt: sandbox.routerJwt },
      };
    }),
    sandboxGetTaskIdV2: authed(async (request) => {
      const sandbox = sandboxOf(request.sandboxId);
      return sandbox.finished ? { taskResult: taskResult(sandbox) } : { taskId: sandbox.taskId };
    }),
    sandboxGetCommandRouterAccess: authed(async (request) => {
      const sandbox = sandboxOf(request.sandboxId);
      if (sandbox.finished)
        throw new ServerError(Status.FAILED_PRECONDITION, `Sandbox ${sandbox.id} has finished`);
      return { url: host.routerUrl(), jwt: sandbox.routerJwt };
    }),
    sandboxWaitV2: authed(async (request, context) => {
      const sandbox = sandboxOf(request.sandboxId);
      await waitFinished(sandbox, Number(request.timeout ?? 0), context.signal);
      return { result: taskResult(sandbox), metadata: { appId: sandbox.appId } };
    }),
    sandboxTerminateV2: authed(async (request) => {
      const sandbox = sandboxOf(request.sandboxId);
      await host.finish(sandbox, TERMINATED, '');
      return {};
    }),
    sandboxListV2: authed(async (request) => {
      const wanted = (request.tags as Tag[]) ?? [];
      // 0 (the field's default) is the first page.
      const before = Number(request.beforeTimestamp) || Number.POSITIVE_INFINITY;
      const found = [...sandboxes.values()]
        .filter((s) => request.includeFinished === true || !s.finished)
        .filter((s) => !request.appId || s.appId === request.appId)
        .filter((s) => wanted.every((t) => s.tags[t.tagName] === t.tagValue))
        .filter((s) => s.createdAt < before)
        .sort((a, b) => b.createdAt - a.createdAt)
        .slice(0, 100);
      return {
        sandboxes: found.map((s) => ({
          id: s.id,
          createdAt: s.createdAt,
          appId: s.appId,
          tags: tagsOf(s),
          imageId: s.imageId,
          timeoutSecs: s.timeoutSecs,
          idleTimeoutSecs: s.idleTimeoutSecs,
          taskInfo: { id: s.taskId, result: taskResult(s) },
        })),
      };
    }),
    sandboxTagsGetV2: authed(async (request) => ({ tags: tagsOf(sandboxOf(request.sandboxId)) })),
    sandboxTagsSetV2: authed(async (request) => {
      const sandbox = sandboxOf(request.sandboxId);
      sandbox.tags = {};
      for (const tag of (request.tags as Tag[]) ?? []) sandbox.tags[tag.tagName] = tag.tagValue;
      return {};
    }),
  };
}
