/**
 * A local transport for the session tests and benchmark: the plain path is core's
 * startHostProcess (each command leads its own process group), and a test sandbox wires a
 * SessionPool in front of it exactly as a backend would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BaseSandbox,
  type CheckpointStore,
  enforcementReport,
  type RawProcess,
  SessionPool,
  type StartRequest,
  startHostProcess,
} from '../src/backend.js';
import { UnsupportedError } from '../src/index.js';
import type { SessionPoolOptions } from '../src/session/index.js';

/** Plain path: spawn argv in a new process group. */
export async function spawnPlain(req: StartRequest): Promise<RawProcess> {
  return startHostProcess(req);
}

/**
 * The docker CLI's `exec -i` stream as a transport into `container` (it stands in for a hijacked
 * docker exec): stdout and stderr apart, stdin half-closable.
 */
export function dockerCliExec(
  container: string,
  argv: readonly string[],
  env: Readonly<Record<string, string>>,
  cwd: string,
): Promise<RawProcess> {
  return spawnPlain({
    argv: [
      'docker',
      'exec',
      '-i',
      '-w',
      cwd,
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      container,
      ...argv,
    ],
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
}

/**
 * A transport like a hijacked docker exec: it reports the exit only once stdout and stderr
 * have ended, so a dead shell whose streams something else holds open looks alive.
 */
export function exitWhenStreamsEnd(raw: RawProcess): RawProcess {
  let ended = 0;
  let allEnded!: () => void;
  const streamsEnded = new Promise<void>((resolve) => {
    allEnded = resolve;
  });
  const watch = async function* (stream: AsyncIterable<Uint8Array>) {
    try {
      yield* stream;
    } finally {
      if (++ended === 2) allEnded();
    }
  };
  return {
    stdout: watch(raw.stdout),
    stderr: watch(raw.stderr),
    exit: Promise.all([raw.exit, streamsEnded]).then(([exit]) => exit),
    writeStdin: (chunk) => raw.writeStdin(chunk),
    closeStdin: () => raw.closeStdin(),
    kill: (signal) => raw.kill(signal),
  };
}

/** The shells the tests run sessions in: the system sh (dash here) and busybox alone. */
export const SHELLS: Record<string, readonly string[]> = {
  sh: ['sh'],
  busybox: ['/bin/busybox', 'sh'],
};

/** A PATH where only busybox applets exist: proves a busybox-only image is enough. */
export async function busyboxOnlyPath(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'agentbox-bb-'));
  const { symlink } = await import('node:fs/promises');
  for (const applet of [
    'sh',
    'setsid',
    'sleep',
    'cat',
    'kill',
    'env',
    'head',
    'printf',
    'echo',
    'wc',
    'dd',
    'true',
  ])
    await symlink('/bin/busybox', join(dir, applet));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const noCheckpoints: CheckpointStore = {
  create: () => Promise.reject(new UnsupportedError('no checkpoints in the session test sandbox')),
  restore: () => Promise.reject(new UnsupportedError('no checkpoints in the session test sandbox')),
  list: () => Promise.resolve([]),
  delete: () => Promise.reject(new UnsupportedError('no checkpoints in the session test sandbox')),
};

export interface SessionTestOptions {
  /** argv of the sessions' shell (default: the system sh). */
  shell?: readonly string[];
  /** Environment the sessions' shell starts with (default: empty). */
  shellEnv?: Record<string, string>;
  pool?: Partial<SessionPoolOptions>;
  /** The shells' transport behaves like a docker exec stream: exit only once the streams end, stdin kept open. */
  lateExit?: boolean;
}

/** A sandbox on this machine whose exec goes through a SessionPool, as a backend wires it. */
export class SessionTestSandbox extends BaseSandbox {
  readonly sessions: SessionPool;
  protected readonly checkpoints = noCheckpoints;
  readonly #dir: string;

  private constructor(dir: string, opts: SessionTestOptions) {
    super({
      kind: 'session-test',
      id: `session-test-${process.pid}`,
      workdir: dir,
      capabilities: {
        isolation: 'none',
        checkpoints: false,
        spawn: true,
        stdin: true,
        kill: true,
        nonRootUser: false,
        networkPolicy: false,
        reattach: false,
      },
      enforcement: enforcementReport({ status: 'not-supported', detail: 'a test sandbox on this machine' }),
    });
    this.#dir = dir;
    this.sessions = new SessionPool({
      startProcess: (req) => spawnPlain(req),
      openShell: async () => {
        const shell = opts.shell ?? SHELLS.sh!;
        if (!opts.lateExit) return spawnPlain({ argv: shell, cwd: '/', env: opts.shellEnv ?? {} });
        // Like a docker exec stream: stdin stays open when the shell dies (node would close a
        // child's stdin on its exit; `cat` in front does not), and exit waits for the streams.
        const relayed = ['/bin/sh', '-c', 'cat | "$@"', 'relay', ...shell];
        return exitWhenStreamsEnd(await spawnPlain({ argv: relayed, cwd: '/', env: opts.shellEnv ?? {} }));
      },
      context: { backend: 'session-test', sandboxId: this.id },
      ...opts.pool,
    });
  }

  static async create(opts: SessionTestOptions = {}): Promise<SessionTestSandbox> {
    return new SessionTestSandbox(await mkdtemp(join(tmpdir(), 'agentbox-session-')), opts);
  }

  protected startProcess(req: StartRequest, signal?: AbortSignal): Promise<RawProcess> {
    return this.sessions.startProcess(req, signal);
  }

  protected readFileAt(): Promise<Uint8Array> {
    return Promise.reject(new UnsupportedError('not in the session test sandbox'));
  }

  protected writeFileAt(): Promise<void> {
    return Promise.reject(new UnsupportedError('not in the session test sandbox'));
  }

  protected async closeResources(): Promise<void> {
    await this.sessions.close();
    await rm(this.#dir, { recursive: true, force: true });
  }
}
