/**
 * The singularity sandbox: one apptainer instance per sandbox, its directory `<root>/<id>/` on
 * the host holding the workspace (bound read-write at `workspacePath`), the overlay directory
 * (the writable layer of the root) and the checkpoint store (seen by no instance). Commands run
 * down shells kept open in the instance (core's SessionPool) when one is idle, else through one
 * `exec instance://NAME` each (the plain path). Files go through the instance too, so a path
 * resolves as the sandbox sees it.
 */

import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { type EnforcementReport, NotFoundError } from '@agentbox/core';
import {
  apiCommand,
  BaseSandbox,
  type CheckpointStore,
  cgroupOomKills,
  checkFileScript,
  collectProcess,
  type ErrorContext,
  type HostProcess,
  memoryCgroupOf,
  OomKillCounter,
  type RawProcess,
  READ_FILE_SCRIPT,
  readScriptResult,
  SessionPool,
  type StartRequest,
  startHostProcess,
  TreeCheckpointStore,
  WRITE_FILE_SCRIPT,
  watchSource,
} from '@agentbox/core/backend';
import { SandboxCheckpoints } from './checkpoints.js';
import { type Cli, cliEnv, runCli } from './cli.js';
import type { SingularityResolvedConfig } from './config.js';
import { frozen } from './freeze.js';
import { signalGroupAndHolders } from './holders.js';
import type { Instance } from './instance.js';

const KIND = 'singularity';

export interface SingularitySandboxInit {
  id: string;
  config: SingularityResolvedConfig;
  cli: Cli;
  /** `<root>/<id>`, absolute. */
  dir: string;
  instance: Instance;
  uid: number;
  enforcement: EnforcementReport;
  /** The overlay directory, when the root is writable through one. */
  overlayDir: string | undefined;
}

export class SingularitySandbox extends BaseSandbox {
  protected readonly checkpoints: CheckpointStore;
  readonly #cli: Cli;
  readonly #dir: string;
  readonly #keep: boolean;
  readonly #fastPath: boolean;
  #instance: Instance;
  /** With a memory limit: the OOM-kill count of the instance's memory cgroup, per instance (a restart makes a new one). */
  #oomKills: { instance: Instance; counter: OomKillCounter } | undefined;
  readonly #memoryLimited: boolean;
  readonly #running = new Set<HostProcess>();
  /** Settles when the current freeze ends: no command starts while the instance is frozen. */
  #thawed: Promise<unknown> = Promise.resolve();
  /**
   * The fast exec path in front of the plain one: small commands run down a shell already open
   * in the instance, so they do not pay a CLI start each. Replaced when a rollback restarts the
   * instance.
   */
  sessions: SessionPool;

  constructor(init: SingularitySandboxInit) {
    const root = init.uid === 0;
    super({
      kind: KIND,
      id: init.id,
      workdir: init.config.workspacePath,
      capabilities: {
        isolation: 'container',
        checkpoints: true,
        spawn: true,
        stdin: true,
        kill: true,
        nonRootUser: !root,
        networkPolicy: true,
        reattach: true,
        unsupported: root ? { nonRootUser: 'this process runs as root, so commands do too' } : {},
      },
      enforcement: init.enforcement,
    });
    this.#cli = init.cli;
    this.#dir = init.dir;
    this.#keep = init.config.keep;
    this.#fastPath = init.config.fastPath;
    this.#instance = init.instance;
    this.#memoryLimited = init.enforcement['limits.memoryMiB'].status === 'enforced';
    this.sessions = this.#pool();
    const context = { backend: KIND, sandboxId: init.id };
    this.checkpoints = new SandboxCheckpoints({
      workspace: new TreeCheckpointStore({
        root: join(init.dir, 'workspace'),
        storeDir: join(init.dir, 'checkpoints', 'workspace'),
      }),
      overlayDir: init.overlayDir,
      storeDir: join(init.dir, 'checkpoints', 'overlay'),
      restart: (fn) => this.#restart(fn),
      frozen: (fn) => {
        const run = this.#thawed.then(() => frozen(this.#instance, this.context('checkpoint'), fn));
        this.#thawed = run.catch(() => {});
        return run;
      },
      context,
    });
  }

  /** The running instance (name, pid), for tests and diagnostics. */
  get instance(): Instance {
    return this.#instance;
  }

  /** The sandbox's directory on the host (workspace, overlay, checkpoints). */
  get hostDir(): string {
    return this.#dir;
  }

  #pool(): SessionPool {
    return new SessionPool({
      startProcess: (req, signal) => this.#startPlain(req, signal),
      // From the host: the group, and a process that left it but still holds its output.
      signalGroup: async (pgid, signal) => signalGroupAndHolders(this.#instance, pgid, signal),
      enabled: this.#fastPath,
      context: this.context('exec'),
    });
  }

  /** Read on the host, from the cgroup the instance's init is in (apptainer puts its commands there too). */
  protected override async oomKillSeen(): Promise<boolean> {
    if (!this.#memoryLimited) return false;
    const instance = this.#instance;
    if (this.#oomKills?.instance !== instance) {
      const dir = await memoryCgroupOf(instance.pid);
      const counter = new OomKillCounter(async () => (dir ? cgroupOomKills(dir) : undefined));
      this.#oomKills = { instance, counter };
    }
    return this.#oomKills.counter.seen();
  }

  protected async startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    await this.#thawed;
    return this.sessions.startProcess(req, signal);
  }

  /** argv of the CLI running `argv` in the instance, with exactly `env` and in `cwd`. */
  #execArgv(req: StartRequest): string[] {
    return [
      this.#cli.path,
      'exec',
      '--cleanenv',
      `instance://${this.#instance.name}`,
      ...apiCommand(req, this.context('exec')),
    ];
  }

  /** The plain path: one `exec instance://` per command, leading its own process group on the host. */
  async #startPlain(req: StartRequest, _signal: AbortSignal | undefined): Promise<RawProcess> {
    this.#instance.assertAlive(this.context('exec'));
    if (req.cwd !== this.workdir && req.cwd !== '/') {
      const probe = await this.#probe('[ -d "$1" ]', [req.cwd]);
      if (probe.code !== 0) throw new NotFoundError(`working directory ${req.cwd} does not exist`);
    }
    const [program, ...args] = this.#execArgv(req);
    const proc = startHostProcess({ argv: [program!, ...args], cwd: '/', env: cliEnv() });
    this.#running.add(proc);
    void proc.exit.then(() => this.#running.delete(proc));
    return proc;
  }

  /** Run a probe of ours in the instance to its end, through one `exec` (the plain path's own check). */
  #probe(script: string, args: string[]) {
    this.#instance.assertAlive(this.context('exec'));
    const argv = apiCommand(
      {
        argv: ['/bin/sh', '-c', script, 'sh', ...args],
        cwd: '/',
        env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      },
      this.context('exec'),
    );
    return runCli(this.#cli, ['exec', '--cleanenv', `instance://${this.#instance.name}`, ...argv], {
      context: this.context('exec'),
    });
  }

  /**
   * Run a file script of ours to its end down a session (the plain path when none is idle), so a
   * file operation costs no CLI start when a session is free.
   */
  async #fileScript(
    script: string,
    args: string[],
    input: AsyncIterable<Uint8Array> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
    const proc = await this.sessions.startProcess(
      {
        argv: ['/bin/sh', '-c', script, 'sh', ...args],
        cwd: '/',
        env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      },
      signal,
    );
    const abort = () => void proc.kill('SIGKILL').catch(() => {});
    signal?.addEventListener('abort', abort, { once: true });
    try {
      const collected = collectProcess(proc);
      collected.catch(() => {});
      if (input) {
        const source = watchSource(input);
        try {
          for await (const chunk of source.data) await proc.writeStdin(chunk);
        } catch {
          // The script stopped reading (a bad path): its exit status says why.
        }
        // The caller's data failed: the write fails with its error (and the script is stopped).
        if (source.failed) {
          await proc.kill('SIGKILL').catch(() => {});
          await collected.catch(() => {});
          throw source.error;
        }
      }
      await proc.closeStdin().catch(() => {});
      const r = await collected;
      signal?.throwIfAborted();
      return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
    } finally {
      signal?.removeEventListener('abort', abort);
    }
  }

  protected async readFileAt(
    path: string,
    maxBytes: number,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    await this.#thawed;
    const r = await this.#fileScript(READ_FILE_SCRIPT, [path, String(maxBytes)], undefined, signal);
    return readScriptResult(r, path, maxBytes, this.#fileContext());
  }

  protected async writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await this.#thawed;
    const r = await this.#fileScript(
      WRITE_FILE_SCRIPT,
      [path, mode === undefined ? '' : mode.toString(8)],
      data,
      signal,
    );
    checkFileScript(r, path, this.#fileContext());
  }

  #fileContext(): ErrorContext {
    return { backend: KIND, sandboxId: this.id };
  }

  /** Stop the instance, run `fn`, start it again: the handle, its id and its directory stay. */
  async #restart(fn: () => Promise<void>): Promise<void> {
    const previous = this.sessions;
    // Stopping the instance first ends the sessions' shells at once (a pool closing live shells waits on each).
    await this.#instance.stop(this.context('rollback'));
    await previous.close();
    await this.#stopRunning();
    await fn();
    const next = await this.#instance.restart(this.context('rollback'));
    const pool = (() => {
      this.#instance = next;
      return this.#pool();
    })();
    await this.swapInstance({
      activate: () => {
        this.sessions = pool;
      },
      sessions: { previous, next: pool },
    });
  }

  async #stopRunning(): Promise<void> {
    await Promise.all([...this.#running].map((proc) => proc.kill('SIGKILL').catch(() => {})));
  }

  protected async closeResources(): Promise<void> {
    // First: it kills what still runs on the sessions and ends their shells.
    await this.sessions.close();
    await this.#stopRunning();
    if (this.#keep) return;
    // Stopping the instance ends every process in it; then nothing of the sandbox is left.
    await this.#instance.stop(this.context('close'));
    await removeTree(this.#dir);
  }
}

/** `rm -rf` that also removes read-only directories the sandbox left. */
export async function removeTree(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true }).catch(async () => {
    await new Promise((done) => execFile('chmod', ['-R', 'u+rwX', dir], done));
    await fs.rm(dir, { recursive: true, force: true });
  });
}
