/**
 * The Daytona emulator: the control plane (sandboxes, snapshots) and the toolbox API of
 * `@daytonaio/sdk` on one local HTTP server, each sandbox a real Docker container. The SDK's
 * event socket (socket.io) is not served: clients run in polling mode
 * (`useDeprecatedPolling: true` or DAYTONA_USE_DEPRECATED_POLLING=true). Unknown endpoints are
 * answered 501 with the method and path, and logged.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Docker from 'dockerode';
import { EMULATOR_LABEL, INSTANCE_LABEL } from '../docker.js';
import { HttpFailure, Router, readJson, sendJson } from '../http.js';
import { closeAndRemoveOwned, InFlight, listenLocal } from '../server.js';
import { type SandboxRecord, type SnapshotRecord, sandboxDto, snapshotDto } from './state.js';
import { toolboxRoutes } from './toolbox.js';

export interface DaytonaEmulatorOptions {
  /** Port to listen on (0 or absent: any free port). Always on 127.0.0.1 unless `host` says otherwise. */
  port?: number;
  host?: string;
  /** The API key clients must send as `Authorization: Bearer`; random when absent. */
  apiKey?: string;
  /** Image a sandbox starts from when `snapshot` is not given. Default `agentbox/busybox:test`. */
  defaultSnapshot?: string;
  /**
   * How long one of Daytona's interval minutes lasts here, in milliseconds (default 60000).
   * Tests set it low to watch auto-stop and auto-delete happen.
   */
  minuteMs?: number;
  /**
   * Docker client; default the local daemon (DOCKER_HOST or the default socket).
   * @internal Its type is dockerode's, which the published types do not depend on.
   */
  docker?: Docker;
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
}

export interface DaytonaEmulator {
  /** The API URL to give the SDK (`new Daytona({apiUrl})` or DAYTONA_API_URL). */
  url: string;
  apiKey: string;
  /** This emulator's id: the value of INSTANCE_LABEL on every container and image it makes. */
  instance: string;
  /** Stop serving and remove every container and snapshot image this emulator made. */
  close(): Promise<void>;
}

const DEFAULT_IMAGE = 'agentbox/busybox:test';
const SNAPSHOT_REPO = 'agentbox-daytona-emulator/snapshot';

export async function startDaytonaEmulator(options: DaytonaEmulatorOptions = {}): Promise<DaytonaEmulator> {
  const docker = options.docker ?? new Docker();
  const apiKey = options.apiKey ?? `emu-${randomBytes(12).toString('hex')}`;
  const instance = randomUUID();
  const minuteMs = options.minuteMs ?? 60_000;
  const log = options.log ?? ((line: string) => process.stderr.write(`[daytona-emulator] ${line}\n`));
  const defaultImage = options.defaultSnapshot ?? DEFAULT_IMAGE;
  const sandboxes = new Map<string, SandboxRecord>();
  const snapshots = new Map<string, SnapshotRecord>();
  let baseUrl = '';
  // The toolbox at the address the client used for the API (its Host header), so that whatever
  // stands between them (a proxy, a port forward) stays in the path of toolbox calls too.
  const toolboxUrl = (req: IncomingMessage) => {
    const host = req.headers.host;
    const valid = host !== undefined && /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(host);
    return `${valid ? `http://${host}` : baseUrl}/toolbox`;
  };

  const findSandbox = (idOrName: string): SandboxRecord => {
    const found = sandboxes.get(idOrName) ?? [...sandboxes.values()].find((s) => s.name === idOrName);
    if (!found) throw new HttpFailure(404, `Sandbox with ID or name ${idOrName} not found`, 'NOT_FOUND');
    return found;
  };
  const findSnapshot = (idOrName: string): SnapshotRecord | undefined =>
    snapshots.get(idOrName) ?? [...snapshots.values()].find((s) => s.name === idOrName);
  const startedSandbox = (id: string): SandboxRecord => {
    const found = findSandbox(id);
    if (found.state !== 'started')
      throw new HttpFailure(
        409,
        `Sandbox ${id} is not started (state ${found.state})`,
        'SANDBOX_NOT_STARTED',
      );
    found.lastActivityAt = new Date();
    return found;
  };
  const touch = (record: SandboxRecord) => {
    record.updatedAt = new Date();
  };

  async function stopSandbox(record: SandboxRecord): Promise<void> {
    record.state = 'stopping';
    touch(record);
    await record.container.stop({ t: 0 }).catch(() => {});
    record.state = 'stopped';
    record.stoppedAt = new Date();
    record.sessions.clear();
    touch(record);
  }

  async function destroySandbox(record: SandboxRecord): Promise<void> {
    record.state = 'destroyed';
    touch(record);
    sandboxes.delete(record.id);
    await record.container.remove({ force: true }).catch(() => {});
  }

  const router = new Router();

  router.add('POST', '/sandbox', async (req, res) => {
    const body = await readJson(req);
    if (body.buildInfo)
      throw new HttpFailure(501, 'daytona emulator: building images (buildInfo) is not emulated');
    if (body.networkAllowList || body.domainAllowList)
      throw new HttpFailure(
        501,
        'daytona emulator: networkAllowList / domainAllowList are not emulated (only networkBlockAll)',
      );
    const snapshotName =
      typeof body.snapshot === 'string' && body.snapshot !== '' ? body.snapshot : undefined;
    let image = defaultImage;
    if (snapshotName !== undefined) {
      const snapshot = findSnapshot(snapshotName);
      if (snapshot) {
        if (snapshot.state !== 'active')
          throw new HttpFailure(400, `Snapshot ${snapshotName} is ${snapshot.state}`, 'SNAPSHOT_NOT_ACTIVE');
        image = snapshot.imageName;
      } else {
        const exists = await docker
          .getImage(snapshotName)
          .inspect()
          .then(
            () => true,
            () => false,
          );
        if (!exists) throw new HttpFailure(404, `Snapshot ${snapshotName} not found`, 'NOT_FOUND');
        image = snapshotName;
      }
    }
    const id = randomUUID();
    const cpu = numberOr(body.cpu, 1);
    const memory = numberOr(body.memory, 1);
    const disk = numberOr(body.disk, 3);
    const labels = stringRecord(body.labels);
    const env = stringRecord(body.env);
    const networkBlockAll = body.networkBlockAll === true;
    const container = await docker.createContainer({
      Image: image,
      Cmd: ['sleep', '2147483647'],
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: { [EMULATOR_LABEL]: 'daytona', [INSTANCE_LABEL]: instance, 'io.agentbox.emulator.sandbox': id },
      ...(typeof body.user === 'string' && body.user !== '' ? { User: body.user } : {}),
      HostConfig: {
        NanoCpus: Math.round(cpu * 1e9),
        Memory: Math.round(memory * 1024 * 1024 * 1024),
        NetworkMode: networkBlockAll ? 'none' : 'bridge',
      },
    });
    await container.start();
    const user = (await container.inspect()).Config.User || 'root';
    const now = new Date();
    const record: SandboxRecord = {
      id,
      name: typeof body.name === 'string' && body.name !== '' ? body.name : id,
      snapshot: snapshotName ?? defaultImage,
      user,
      env,
      labels,
      cpu,
      memory,
      disk,
      networkBlockAll,
      state: 'started',
      autoStopInterval: intervalOr(body.autoStopInterval, 15),
      autoArchiveInterval: intervalOr(body.autoArchiveInterval, 7 * 24 * 60),
      autoDeleteInterval: intervalOr(body.autoDeleteInterval, -1),
      createdAt: now,
      updatedAt: now,
      lastActivityAt: now,
      stoppedAt: undefined,
      container,
      sessions: new Map(),
    };
    sandboxes.set(id, record);
    log(`created sandbox ${id} from ${image}`);
    sendJson(res, 200, sandboxDto(record, toolboxUrl(req)));
  });

  router.add('GET', '/sandbox', async (req, res, _params, url) => {
    const wanted = url.searchParams.get('labels');
    let labels: Record<string, string> = {};
    if (wanted) {
      try {
        labels = stringRecord(JSON.parse(wanted));
      } catch {
        throw new HttpFailure(400, 'labels must be a JSON object');
      }
    }
    const items = [...sandboxes.values()]
      .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .map((s) => sandboxDto(s, toolboxUrl(req)));
    sendJson(res, 200, { items, total: items.length, page: 1, totalPages: 1, nextCursor: null });
  });
  router.add('GET', '/sandbox/:id', async (req, res, params) => {
    sendJson(res, 200, sandboxDto(findSandbox(params.id!), toolboxUrl(req)));
  });
  router.add('GET', '/sandbox/:id/toolbox-proxy-url', async (req, res, params) => {
    findSandbox(params.id!);
    sendJson(res, 200, { url: toolboxUrl(req) });
  });
  router.add('DELETE', '/sandbox/:id', async (req, res, params) => {
    const record = findSandbox(params.id!);
    await destroySandbox(record);
    log(`deleted sandbox ${record.id}`);
    sendJson(res, 200, sandboxDto(record, toolboxUrl(req)));
  });
  router.add('POST', '/sandbox/:id/stop', async (req, res, params) => {
    const record = findSandbox(params.id!);
    if (record.state === 'started') await stopSandbox(record);
    sendJson(res, 200, sandboxDto(record, toolboxUrl(req)));
  });
  router.add('POST', '/sandbox/:id/start', async (req, res, params) => {
    const record = findSandbox(params.id!);
    if (record.state === 'stopped' || record.state === 'archived') {
      await record.container.start();
      record.state = 'started';
      record.stoppedAt = undefined;
      record.lastActivityAt = new Date();
      touch(record);
    }
    sendJson(res, 200, sandboxDto(record, toolboxUrl(req)));
  });
  for (const [path, field] of [
    ['autostop', 'autoStopInterval'],
    ['autoarchive', 'autoArchiveInterval'],
    ['autodelete', 'autoDeleteInterval'],
  ] as const) {
    router.add('POST', `/sandbox/:id/${path}/:interval`, async (req, res, params) => {
      const record = findSandbox(params.id!);
      const interval = Number(params.interval);
      if (!Number.isInteger(interval) || interval < (field === 'autoDeleteInterval' ? -1 : 0))
        throw new HttpFailure(400, `invalid interval ${params.interval}`);
      record[field] = interval;
      touch(record);
      sendJson(res, 200, sandboxDto(record, toolboxUrl(req)));
    });
  }
  router.add('PUT', '/sandbox/:id/labels', async (req, res, params) => {
    const record = findSandbox(params.id!);
    record.labels = stringRecord((await readJson(req)).labels);
    touch(record);
    sendJson(res, 200, { labels: record.labels });
  });
  router.add('POST', '/sandbox/:id/snapshot', async (req, res, params) => {
    const record = findSandbox(params.id!);
    const name = (await readJson(req)).name;
    if (typeof name !== 'string' || name === '')
      throw new HttpFailure(400, 'name must be a non-empty string');
    if (findSnapshot(name)) throw new HttpFailure(409, `Snapshot ${name} already exists`, 'CONFLICT');
    if (record.state !== 'started') throw new HttpFailure(409, `Sandbox ${record.id} is ${record.state}`);
    const id = randomUUID();
    const now = new Date();
    const snapshot: SnapshotRecord = {
      id,
      name,
      imageName: `${SNAPSHOT_REPO}:${id}`,
      state: 'snapshotting',
      sourceSandboxId: record.id,
      createdAt: now,
      updatedAt: now,
      owned: true,
    };
    snapshots.set(id, snapshot);
    record.state = 'snapshotting';
    touch(record);
    void (async () => {
      try {
        await record.container.commit({
          repo: SNAPSHOT_REPO,
          tag: id,
          pause: true,
          changes: `LABEL ${EMULATOR_LABEL}=daytona\nLABEL ${INSTANCE_LABEL}=${instance}`,
        });
        snapshot.state = 'active';
      } catch (error) {
        snapshot.state = 'error';
        log(`snapshot ${name} of ${record.id} failed: ${(error as Error).message}`);
      }
      snapshot.updatedAt = new Date();
      if (record.state === 'snapshotting') record.state = 'started';
      touch(record);
    })();
    sendJson(res, 200, sandboxDto(record, toolboxUrl(req)));
  });

  router.add('GET', '/snapshots', async (_req, res) => {
    const items = [...snapshots.values()].map(snapshotDto);
    sendJson(res, 200, { items, total: items.length, page: 1, totalPages: 1 });
  });
  router.add('GET', '/snapshots/:id', async (_req, res, params) => {
    const snapshot = findSnapshot(params.id!);
    if (!snapshot) throw new HttpFailure(404, `Snapshot ${params.id} not found`, 'NOT_FOUND');
    sendJson(res, 200, snapshotDto(snapshot));
  });
  router.add('DELETE', '/snapshots/:id', async (_req, res, params) => {
    const snapshot = findSnapshot(params.id!);
    if (!snapshot) throw new HttpFailure(404, `Snapshot ${params.id} not found`, 'NOT_FOUND');
    snapshots.delete(snapshot.id);
    if (snapshot.owned)
      await docker
        .getImage(snapshot.imageName)
        .remove({ force: true })
        .catch(() => {});
    sendJson(res, 200, undefined);
  });

  toolboxRoutes(router, '/toolbox', startedSandbox);

  const requests = new InFlight();
  const server = createServer((req, res) => {
    void requests.track(handle(req, res));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    try {
      if (req.headers.authorization !== `Bearer ${apiKey}`)
        throw new HttpFailure(401, 'Unauthorized: invalid or missing API key', 'UNAUTHORIZED');
      const route = router.match(method, url.pathname);
      if (!route) {
        log(`not emulated: ${method} ${url.pathname}`);
        throw new HttpFailure(
          501,
          `daytona emulator: ${method} ${url.pathname} is not emulated`,
          'NOT_EMULATED',
        );
      }
      await route.handler(req, res, route.params, url);
    } catch (error) {
      const failure =
        error instanceof HttpFailure
          ? error
          : new HttpFailure(500, `daytona emulator: ${(error as Error).message}`);
      if (failure.status >= 500) log(`${method} ${url.pathname} → ${failure.status} ${failure.message}`);
      if (res.headersSent) {
        res.destroy(failure);
        return;
      }
      req.resume();
      sendJson(res, failure.status, {
        statusCode: failure.status,
        message: failure.message,
        code: failure.code ?? 'ERROR',
      });
    }
  }

  // Daytona's lifecycle: auto-stop after inactivity, auto-archive and auto-delete after stopping.
  const tick = async () => {
    const now = Date.now();
    for (const record of [...sandboxes.values()]) {
      try {
        if (record.state === 'started' && record.autoStopInterval > 0) {
          if (now - record.lastActivityAt.getTime() >= record.autoStopInterval * minuteMs) {
            log(`auto-stopping sandbox ${record.id} (idle ${record.autoStopInterval} min)`);
            await stopSandbox(record);
          }
        }
        if ((record.state === 'stopped' || record.state === 'archived') && record.stoppedAt) {
          const stoppedFor = now - record.stoppedAt.getTime();
          if (record.autoDeleteInterval >= 0 && stoppedFor >= record.autoDeleteInterval * minuteMs) {
            log(`auto-deleting sandbox ${record.id}`);
            await destroySandbox(record);
          } else if (
            record.state === 'stopped' &&
            record.autoArchiveInterval > 0 &&
            stoppedFor >= record.autoArchiveInterval * minuteMs
          ) {
            record.state = 'archived';
            touch(record);
          }
        }
      } catch (error) {
        log(`lifecycle of ${record.id} failed: ${(error as Error).message}`);
      }
    }
  };
  let ticking = false;
  const ticker = setInterval(
    () => {
      if (ticking) return;
      ticking = true;
      void tick().finally(() => {
        ticking = false;
      });
    },
    Math.max(20, Math.min(1_000, minuteMs / 4)),
  );
  ticker.unref();

  baseUrl = await listenLocal(server, options.port, options.host);
  log(`listening on ${baseUrl}`);

  let closing: Promise<void> | undefined;
  return {
    url: baseUrl,
    apiKey,
    instance,
    close() {
      closing ??= (async () => {
        clearInterval(ticker);
        await closeAndRemoveOwned(server, docker, instance, requests);
      })();
      return closing;
    },
  };
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

function intervalOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isInteger(value) ? value : fallback;
}

function stringRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}
