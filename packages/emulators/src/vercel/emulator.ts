/**
 * The Vercel Sandbox emulator: the REST API `@vercel/sandbox` 3.x calls (the SDK's base URL is
 * `https://vercel.com/api`; point it here with a `fetch` that rewrites that prefix), each session
 * a real Docker container. Commands stream as NDJSON, uploads are gzip tars, and a snapshot
 * stops the session as Vercel's does: later calls on it answer 410, and the SDK resumes the
 * sandbox (`GET /v2/sandboxes/{name}?resume=true`) into a new session from its latest snapshot.
 * Unknown endpoints are answered 501 with the method and path, and logged.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import Docker from 'dockerode';
import { EMULATOR_LABEL, INSTANCE_LABEL } from '../docker.js';
import { HttpFailure, Router, readJson, sendJson } from '../http.js';
import { closeAndRemoveOwned, InFlight, listenLocal } from '../server.js';
import { followLogs, NDJSON, signalCommand, startCommand } from './commands.js';
import { makeDirectory, readToResponse, resolvePath, writeTar } from './fs.js';
import {
  commandDto,
  type SandboxRecord,
  type SessionRecord,
  type SnapshotRecord,
  sandboxDto,
  sessionDto,
  snapshotDto,
} from './state.js';

export interface VercelEmulatorOptions {
  /** Port to listen on (0 or absent: any free port), on 127.0.0.1 unless `host` says otherwise. */
  port?: number;
  host?: string;
  /** The token clients must send as `Authorization: Bearer`; random when absent. */
  token?: string;
  /** The team id clients must send as `?teamId=`; default `team_emulator`. */
  teamId?: string;
  /** Image a sandbox starts from. Default `agentbox/busybox:test` (never pulled). */
  image?: string;
  /**
   * Docker client; default the local daemon (DOCKER_HOST or the default socket).
   * @internal Its type is dockerode's, which the published types do not depend on.
   */
  docker?: Docker;
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
}

export interface VercelEmulator {
  /** The emulator's base URL: it stands for `https://vercel.com/api`. */
  url: string;
  token: string;
  teamId: string;
  /** A project id to pass the SDK (any non-empty id is accepted). */
  projectId: string;
  /**
   * A `fetch` for the SDK's `fetch` option: every request to `https://vercel.com/api` goes to
   * this emulator instead, anything else is refused.
   */
  fetch: typeof globalThis.fetch;
  /** This emulator's id: the value of INSTANCE_LABEL on every container and image it makes. */
  instance: string;
  /** Stop serving and remove every container and snapshot image this emulator made. */
  close(): Promise<void>;
}

export const VERCEL_API = 'https://vercel.com/api';
const DEFAULT_IMAGE = 'agentbox/busybox:test';
const SNAPSHOT_REPO = 'agentbox-vercel-emulator/snapshot';
/** Vercel's default session timeout. */
const DEFAULT_TIMEOUT_MS = 5 * 60_000;

export async function startVercelEmulator(options: VercelEmulatorOptions = {}): Promise<VercelEmulator> {
  const docker = options.docker ?? new Docker();
  const token = options.token ?? `emu_${randomBytes(16).toString('hex')}`;
  const teamId = options.teamId ?? 'team_emulator';
  const instance = randomUUID();
  const baseImage = options.image ?? DEFAULT_IMAGE;
  const log = options.log ?? ((line: string) => process.stderr.write(`[vercel-emulator] ${line}\n`));
  const sandboxes = new Map<string, SandboxRecord>();
  const sessions = new Map<string, SessionRecord>();
  const snapshots = new Map<string, SnapshotRecord>();

  const findSandbox = (name: string): SandboxRecord => {
    const found = sandboxes.get(name);
    if (!found?.session) throw new HttpFailure(404, `Sandbox ${name} not found`, 'not_found');
    return found;
  };
  const findSnapshot = (id: string): SnapshotRecord => {
    const found = snapshots.get(id);
    if (!found || found.status === 'deleted')
      throw new HttpFailure(404, `Snapshot ${id} not found`, 'snapshot_not_found');
    return found;
  };
  /** A session that takes work: a stopped one answers 410, as Vercel's does, so the SDK resumes. */
  const runningSession = (
    id: string,
  ): { session: SessionRecord; sandbox: SandboxRecord; container: Docker.Container } => {
    const session = sessions.get(id);
    if (!session) throw new HttpFailure(404, `Session ${id} not found`, 'not_found');
    const sandbox = findSandbox(session.sandboxName);
    if (session.status === 'snapshotting')
      throw new HttpFailure(422, `Session ${id} is snapshotting`, 'sandbox_snapshotting');
    if (session.status === 'stopping')
      throw new HttpFailure(422, `Session ${id} is stopping`, 'sandbox_stopping');
    if (session.status !== 'running' || !session.container)
      throw new HttpFailure(410, `Session ${id} is ${session.status}`, 'sandbox_stopped');
    return { session, sandbox, container: session.container };
  };

  async function startSession(sandbox: SandboxRecord, image: string, sourceSnapshotId: string | undefined) {
    const id = `sbx_${randomBytes(12).toString('hex')}`;
    const now = Date.now();
    const container = await docker.createContainer({
      Image: image,
      Cmd: ['sleep', '2147483647'],
      Env: Object.entries(sandbox.env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [EMULATOR_LABEL]: 'vercel',
        [INSTANCE_LABEL]: instance,
        'io.agentbox.emulator.sandbox': sandbox.name,
        'io.agentbox.emulator.session': id,
      },
      HostConfig: {
        NanoCpus: Math.round(sandbox.vcpus * 1e9),
        Memory: sandbox.memoryMiB * 1024 * 1024,
        NetworkMode: sandbox.networkPolicy === 'deny-all' ? 'none' : 'bridge',
      },
    });
    await container.start();
    const cwd = (await container.inspect()).Config.WorkingDir || '/';
    const session: SessionRecord = {
      id,
      sandboxName: sandbox.name,
      status: 'running',
      container,
      cwd,
      timeoutMs: sandbox.timeoutMs,
      requestedAt: now,
      startedAt: Date.now(),
      stoppedAt: undefined,
      snapshottedAt: undefined,
      sourceSnapshotId,
      timer: undefined,
      commands: new Map(),
    };
    armTimeout(session);
    sessions.set(id, session);
    sandbox.session = session;
    sandbox.updatedAt = Date.now();
    log(`session ${id} of ${sandbox.name} started from ${image}`);
    return session;
  }

  /** Vercel stops a session when its timeout (from its start) runs out. */
  function armTimeout(session: SessionRecord): void {
    if (session.timer) clearTimeout(session.timer);
    const left = (session.startedAt ?? session.requestedAt) + session.timeoutMs - Date.now();
    session.timer = setTimeout(
      () => {
        const sandbox = sandboxes.get(session.sandboxName);
        if (!sandbox || session.status !== 'running') return;
        log(`session ${session.id} timed out after ${session.timeoutMs} ms`);
        void stopSession(sandbox, session, sandbox.persistent).catch((error: Error) =>
          log(`stopping ${session.id} failed: ${error.message}`),
        );
      },
      Math.max(0, left),
    );
    session.timer.unref();
  }

  async function takeSnapshot(sandbox: SandboxRecord, session: SessionRecord): Promise<SnapshotRecord> {
    const id = `snap_${randomBytes(12).toString('hex')}`;
    const container = session.container!;
    // Vercel stops the VM to snapshot it. Stopping first (no pause) also means a docker exec that
    // races the snapshot fails at once instead of hanging in a frozen container.
    await container.kill().catch(() => {});
    await container.wait().catch(() => {});
    await container.commit({
      repo: SNAPSHOT_REPO,
      tag: id,
      pause: false,
      changes: `LABEL ${EMULATOR_LABEL}=vercel\nLABEL ${INSTANCE_LABEL}=${instance}`,
    });
    const imageName = `${SNAPSHOT_REPO}:${id}`;
    const size = (await docker.getImage(imageName).inspect()).Size ?? 0;
    const now = Date.now();
    const snapshot: SnapshotRecord = {
      id,
      sandboxName: sandbox.name,
      sourceSessionId: session.id,
      imageName,
      status: 'created',
      sizeBytes: size,
      createdAt: now,
      updatedAt: now,
      expiresAt: undefined,
    };
    snapshots.set(id, snapshot);
    sandbox.currentSnapshotId = id;
    session.snapshottedAt = now;
    return snapshot;
  }

  /** Stop a session (a persistent sandbox keeps its filesystem in a snapshot first). */
  async function stopSession(
    sandbox: SandboxRecord,
    session: SessionRecord,
    keepFilesystem: boolean,
  ): Promise<SnapshotRecord | undefined> {
    if (session.status !== 'running') return undefined;
    session.status = 'stopping';
    let snapshot: SnapshotRecord | undefined;
    try {
      if (keepFilesystem) snapshot = await takeSnapshot(sandbox, session);
    } finally {
      await endSession(session);
    }
    return snapshot;
  }

  async function endSession(session: SessionRecord): Promise<void> {
    if (session.timer) clearTimeout(session.timer);
    const container = session.container;
    session.container = undefined;
    session.status = 'stopped';
    session.stoppedAt = Date.now();
    await container?.remove({ force: true }).catch(() => {});
  }

  async function deleteSandbox(sandbox: SandboxRecord): Promise<void> {
    sandboxes.delete(sandbox.name);
    await endSession(sandbox.session);
    log(`deleted sandbox ${sandbox.name}`);
  }

  const router = new Router();

  const create = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readJson(req);
    for (const refused of ['runtime', 'image', 'mounts', 'networkId', 'region', 'failoverRegions'] as const)
      if (body[refused] !== undefined && body[refused] !== null)
        throw new HttpFailure(501, `vercel emulator: ${refused} is not emulated`, 'not_emulated');
    if (Array.isArray(body.ports) && body.ports.length > 0)
      throw new HttpFailure(501, 'vercel emulator: exposed ports (routes) are not emulated', 'not_emulated');
    const policy = body.networkPolicy as { mode?: string } | undefined;
    if (policy !== undefined && policy.mode !== 'allow-all' && policy.mode !== 'deny-all')
      throw new HttpFailure(
        501,
        'vercel emulator: only the allow-all and deny-all network policies are emulated (no domain or CIDR rules)',
        'not_emulated',
      );
    const source = body.source as { type?: string; snapshotId?: string } | undefined;
    let image = baseImage;
    let sourceSnapshotId: string | undefined;
    if (source !== undefined) {
      if (source.type !== 'snapshot' || typeof source.snapshotId !== 'string')
        throw new HttpFailure(
          501,
          `vercel emulator: source type ${source.type} is not emulated`,
          'not_emulated',
        );
      const snapshot = findSnapshot(source.snapshotId);
      image = snapshot.imageName;
      sourceSnapshotId = snapshot.id;
    }
    const name =
      typeof body.name === 'string' && body.name !== '' ? body.name : `sbx-${randomBytes(8).toString('hex')}`;
    if (sandboxes.has(name)) throw new HttpFailure(409, `Sandbox ${name} already exists`, 'conflict');
    const tags = stringRecord(body.tags);
    if (Object.keys(tags).length > 5) throw new HttpFailure(400, 'at most 5 tags', 'bad_request');
    const vcpus = positive((body.resources as { vcpus?: unknown } | undefined)?.vcpus, 2);
    const now = Date.now();
    const sandbox: SandboxRecord = {
      name,
      projectId: typeof body.projectId === 'string' ? body.projectId : '',
      persistent: body.persistent !== false,
      vcpus,
      memoryMiB: vcpus * 2048,
      timeoutMs: positive(body.timeout, DEFAULT_TIMEOUT_MS),
      networkPolicy: policy?.mode === 'deny-all' ? 'deny-all' : 'allow-all',
      env: stringRecord(body.env),
      tags,
      baseImage: image,
      currentSnapshotId: undefined,
      createdAt: now,
      updatedAt: now,
      session: undefined as unknown as SessionRecord,
    };
    sandboxes.set(name, sandbox);
    try {
      await startSession(sandbox, image, sourceSnapshotId);
    } catch (error) {
      sandboxes.delete(name);
      throw error;
    }
    sendJson(res, 200, {
      sandbox: sandboxDto(sandbox),
      session: sessionDto(sandbox.session, sandbox),
      routes: [],
    });
  };
  router.add('POST', '/v3/sandboxes', create);
  router.add('POST', '/v2/sandboxes', create);

  router.add('GET', '/v2/sandboxes', async (_req, res, _params, url) => {
    const tag = url.searchParams.get('tags');
    const prefix = url.searchParams.get('namePrefix') ?? '';
    const [key, ...rest] = (tag ?? '').split(':');
    const items = [...sandboxes.values()]
      // One still being created has no session yet: it is listed once it has.
      .filter((s) => s.session !== undefined && s.name.startsWith(prefix))
      .filter((s) => tag === null || s.tags[key!] === rest.join(':'))
      .map(sandboxDto);
    sendJson(res, 200, { sandboxes: items, pagination: { count: items.length, next: null } });
  });

  router.add('GET', '/v2/sandboxes/snapshots', async (_req, res, _params, url) => {
    const name = url.searchParams.get('name');
    const items = [...snapshots.values()]
      .filter((s) => s.status !== 'deleted' && (name === null || s.sandboxName === name))
      .map(snapshotDto);
    sendJson(res, 200, { snapshots: items, pagination: { count: items.length, next: null } });
  });
  router.add('GET', '/v2/sandboxes/snapshots/:id', async (_req, res, params) => {
    sendJson(res, 200, { snapshot: snapshotDto(findSnapshot(params.id!)) });
  });
  router.add('DELETE', '/v2/sandboxes/snapshots/:id', async (_req, res, params) => {
    const snapshot = findSnapshot(params.id!);
    snapshot.status = 'deleted';
    snapshot.updatedAt = Date.now();
    await docker
      .getImage(snapshot.imageName)
      .remove({ force: true })
      .catch(() => {});
    sendJson(res, 200, { snapshot: snapshotDto(snapshot) });
  });

  router.add('GET', '/v2/sandboxes/sessions/:sid', async (_req, res, params) => {
    const session = sessions.get(params.sid!);
    if (!session) throw new HttpFailure(404, `Session ${params.sid} not found`, 'not_found');
    sendJson(res, 200, { session: sessionDto(session, findSandbox(session.sandboxName)), routes: [] });
  });

  router.add('POST', '/v2/sandboxes/sessions/:sid/cmd', async (req, res, params) => {
    const { session, sandbox, container } = runningSession(params.sid!);
    const body = await readJson(req);
    if (typeof body.command !== 'string' || body.command === '')
      throw new HttpFailure(400, 'command must be a non-empty string', 'bad_request');
    const args = Array.isArray(body.args) ? body.args : [];
    if (!args.every((a): a is string => typeof a === 'string'))
      throw new HttpFailure(400, 'args must be strings', 'bad_request');
    const cwd =
      typeof body.cwd === 'string' && body.cwd !== ''
        ? resolvePath(session.cwd, body.cwd, undefined)
        : session.cwd;
    const record = await startCommand(container, {
      sessionId: session.id,
      name: body.command,
      args,
      cwd,
      env: { ...sandbox.env, ...stringRecord(body.env) },
      sudo: body.sudo === true,
    });
    session.commands.set(record.id, record);
    if (typeof body.timeout === 'number' && body.timeout > 0) {
      const timer = setTimeout(() => void signalCommand(container, record, 9).catch(() => {}), body.timeout);
      void record.done.finally(() => clearTimeout(timer));
    }
    if (body.wait !== true) {
      sendJson(res, 200, { command: commandDto(record) });
      return;
    }
    res.writeHead(200, { 'content-type': NDJSON });
    res.write(`${JSON.stringify({ command: commandDto(record) })}\n`);
    if (body.logs === true)
      await followLogs(record, res, () => `${JSON.stringify({ command: commandDto(record) })}\n`);
    else {
      await record.done;
      res.end(`${JSON.stringify({ command: commandDto(record) })}\n`);
    }
  });
  const commandOf = (sid: string, cmdId: string) => {
    const session = sessions.get(sid);
    const record = session?.commands.get(cmdId);
    if (!session || !record) throw new HttpFailure(404, `Command ${cmdId} not found`, 'not_found');
    return { session, record };
  };
  router.add('GET', '/v2/sandboxes/sessions/:sid/cmd/:cmdId', async (_req, res, params, url) => {
    const { record } = commandOf(params.sid!, params.cmdId!);
    if (url.searchParams.get('wait') !== 'true' || record.exitCode !== null) {
      sendJson(res, 200, { command: commandDto(record) });
      return;
    }
    // Headers now, the answer when the command ends: a long command never meets a header timeout.
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    res.flushHeaders();
    await record.done;
    res.end(JSON.stringify({ command: commandDto(record) }));
  });
  router.add('GET', '/v2/sandboxes/sessions/:sid/cmd/:cmdId/logs', async (_req, res, params) => {
    const { record } = commandOf(params.sid!, params.cmdId!);
    res.writeHead(200, { 'content-type': NDJSON });
    res.flushHeaders();
    await followLogs(record, res);
  });
  router.add('POST', '/v2/sandboxes/sessions/:sid/cmd/:cmdId/kill', async (req, res, params) => {
    const { container } = runningSession(params.sid!);
    const { record } = commandOf(params.sid!, params.cmdId!);
    const signal = (await readJson(req)).signal;
    await signalCommand(container, record, typeof signal === 'number' ? signal : 15);
    sendJson(res, 200, { command: commandDto(record) });
  });

  router.add('POST', '/v2/sandboxes/sessions/:sid/fs/write', async (req, res, params) => {
    const { container } = runningSession(params.sid!);
    await writeTar(container, req);
    sendJson(res, 200, {});
  });
  router.add('POST', '/v2/sandboxes/sessions/:sid/fs/read', async (req, res, params) => {
    const { session, container } = runningSession(params.sid!);
    const body = await readJson(req);
    await readToResponse(container, resolvePath(session.cwd, body.path, body.cwd), res);
  });
  router.add('POST', '/v2/sandboxes/sessions/:sid/fs/mkdir', async (req, res, params) => {
    const { session, container } = runningSession(params.sid!);
    const body = await readJson(req);
    await makeDirectory(container, resolvePath(session.cwd, body.path, body.cwd));
    sendJson(res, 200, {});
  });

  router.add('POST', '/v2/sandboxes/sessions/:sid/snapshot', async (req, res, params) => {
    const { session, sandbox } = runningSession(params.sid!);
    const body = await readJson(req);
    session.status = 'snapshotting';
    let snapshot: SnapshotRecord;
    try {
      snapshot = await takeSnapshot(sandbox, session);
      if (typeof body.expiration === 'number' && body.expiration > 0)
        snapshot.expiresAt = snapshot.createdAt + body.expiration;
    } finally {
      // Vercel stops the session it snapshots.
      await endSession(session);
    }
    log(`snapshot ${snapshot.id} of ${sandbox.name}; session ${session.id} stopped`);
    sendJson(res, 200, { snapshot: snapshotDto(snapshot), session: sessionDto(session, sandbox) });
  });
  router.add('POST', '/v2/sandboxes/sessions/:sid/stop', async (_req, res, params) => {
    const session = sessions.get(params.sid!);
    if (!session) throw new HttpFailure(404, `Session ${params.sid} not found`, 'not_found');
    const sandbox = findSandbox(session.sandboxName);
    const snapshot = await stopSession(sandbox, session, sandbox.persistent);
    sendJson(res, 200, {
      session: sessionDto(session, sandbox),
      sandbox: sandboxDto(sandbox),
      ...(snapshot ? { snapshot: snapshotDto(snapshot) } : {}),
    });
  });
  router.add('POST', '/v2/sandboxes/sessions/:sid/extend-timeout', async (req, res, params) => {
    const { session, sandbox } = runningSession(params.sid!);
    const duration = (await readJson(req)).duration;
    if (typeof duration !== 'number' || duration <= 0)
      throw new HttpFailure(400, 'duration must be a positive number', 'bad_request');
    session.timeoutMs += duration;
    armTimeout(session);
    sendJson(res, 200, { session: sessionDto(session, sandbox) });
  });

  router.add('GET', '/v2/sandboxes/:name', async (_req, res, params, url) => {
    const sandbox = findSandbox(params.name!);
    let resumed = false;
    if (url.searchParams.get('resume') === 'true' && sandbox.session.status !== 'running') {
      // A persistent sandbox comes back with its filesystem: from its latest snapshot.
      const latest =
        sandbox.persistent && sandbox.currentSnapshotId
          ? snapshots.get(sandbox.currentSnapshotId)
          : undefined;
      const usable = latest && latest.status === 'created' ? latest : undefined;
      await startSession(sandbox, usable?.imageName ?? sandbox.baseImage, usable?.id);
      resumed = true;
    }
    sendJson(res, 200, {
      sandbox: sandboxDto(sandbox),
      session: sessionDto(sandbox.session, sandbox),
      routes: [],
      resumed,
    });
  });
  router.add('DELETE', '/v2/sandboxes/:name', async (_req, res, params, url) => {
    const sandbox = findSandbox(params.name!);
    await deleteSandbox(sandbox);
    if (url.searchParams.get('deleteOrphanSnapshots') === 'true') {
      for (const snapshot of snapshots.values()) {
        if (snapshot.sandboxName !== sandbox.name || snapshot.status === 'deleted') continue;
        snapshot.status = 'deleted';
        await docker
          .getImage(snapshot.imageName)
          .remove({ force: true })
          .catch(() => {});
      }
    }
    sendJson(res, 200, { sandbox: sandboxDto(sandbox) });
  });

  const requests = new InFlight();
  const server = createServer((req, res) => {
    void requests.track(handle(req, res));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const method = req.method ?? 'GET';
    try {
      if (req.headers.authorization !== `Bearer ${token}`)
        throw new HttpFailure(401, 'the token is missing or not valid', 'unauthorized');
      if (url.searchParams.get('teamId') !== teamId)
        throw new HttpFailure(403, `not a member of team ${url.searchParams.get('teamId')}`, 'forbidden');
      const route = router.match(method, url.pathname);
      if (!route) {
        log(`not emulated: ${method} ${url.pathname}`);
        throw new HttpFailure(
          501,
          `vercel emulator: ${method} ${url.pathname} is not emulated`,
          'not_emulated',
        );
      }
      await route.handler(req, res, route.params, url);
    } catch (error) {
      const failure =
        error instanceof HttpFailure
          ? error
          : new HttpFailure(500, `vercel emulator: ${(error as Error).message}`);
      if (failure.status >= 500) log(`${method} ${url.pathname} → ${failure.status} ${failure.message}`);
      if (res.headersSent) {
        res.destroy(failure);
        return;
      }
      req.resume();
      sendJson(res, failure.status, {
        error: { code: (failure.code ?? 'error').toLowerCase(), message: failure.message },
      });
    }
  }

  const url = await listenLocal(server, options.port, options.host);
  log(`listening on ${url}`);

  const redirect: typeof globalThis.fetch = (input, init) => {
    const target = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!target.startsWith(`${VERCEL_API}/`))
      return Promise.reject(
        new Error(`vercel emulator: refusing a request outside the Vercel API: ${target}`),
      );
    return globalThis.fetch(`${url}${target.slice(VERCEL_API.length)}`, init);
  };

  let closing: Promise<void> | undefined;
  return {
    url,
    token,
    teamId,
    projectId: 'prj_emulator',
    fetch: redirect,
    instance,
    close() {
      closing ??= (async () => {
        for (const session of sessions.values()) if (session.timer) clearTimeout(session.timer);
        await closeAndRemoveOwned(server, docker, instance, requests);
      })();
      return closing;
    },
  };
}

function positive(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

function stringRecord(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}
