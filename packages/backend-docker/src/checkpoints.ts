/**
 * Checkpoints of the sandbox's persistent writable state — the workspace volume and, when the
 * sandbox has one, the skills volume — kept by core's ExecCheckpointStore in a third labelled
 * volume. (The root is read-only by default and /tmp is a tmpfs scratch space: neither is kept.)
 * The sandbox container has every capability dropped, so even root in it could not read a
 * mode-000 file or put an owner back; and the store must stay out of the sandbox user's sight.
 * So the store lives in a small helper container, started on first use, that mounts those
 * volumes and the store volume and nothing else: root there has exactly CHOWN,
 * DAC_OVERRIDE, DAC_READ_SEARCH and FOWNER, no network, a read-only root and no new privileges.
 * The sandbox never mounts the store and cannot see the helper's processes.
 *
 * The sandbox's processes could still race the helper: swap a directory for a symlink while it
 * copies or restores by path, and so read or write the store through the tree. So a checkpoint
 * and a restore run with the sandbox container paused (`frozen`): nothing of the sandbox runs
 * while the helper works, and the helper's own work never waits on the sandbox's processes.
 * Manifests are authenticated with a per-sandbox key the sandbox never sees.
 */

import { SandboxClosedError } from '@agentbox/core';
import {
  type CheckpointStore,
  type ErrorContext,
  ExecCheckpointStore,
  frozenCheckpointStore,
  type ShellPipes,
  ShellStoreExec,
  STORE_SHELL,
  StreamQueue,
} from '@agentbox/core/backend';
import type Docker from 'dockerode';
import { type DockerClient, dockerError, statusOf } from './client.js';
import type { PullPolicy } from './config.js';
import { DockerDemuxer } from './demux.js';
import { type ExecTarget, openExec, runExec, whenOver, writeTo } from './exec.js';
import { ensureImage, HELPER_TOOLS, missingToolsError, parseToolsProbe, TOOLS_PROBE } from './image.js';
import { labelsFor, names } from './labels.js';
import { REAPER } from './runtime.js';

/** The helper mounts each checkpointed volume below one root: `/state/workspace`, `/state/skills`. */
const STATE = '/state';
const STORE = '/store';
const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface CheckpointHelperOptions {
  client: DockerClient;
  sandboxId: string;
  image: string;
  /** The pull setting for the helper image, applied when the helper is created. */
  pull: PullPolicy;
  labels: Record<string, string>;
  /** The sandbox has a skills volume: it is checkpointed with the workspace. */
  skills: boolean;
  context: ErrorContext;
  /** Hex key that authenticates manifests; undefined for a sandbox created before keys existed. */
  manifestKey: string | undefined;
  /** Run a checkpoint or a restore with the sandbox container paused. */
  frozen<T>(fn: () => Promise<T>): Promise<T>;
}

export class CheckpointHelper {
  readonly store: CheckpointStore;
  readonly #o: CheckpointHelperOptions;
  readonly #shell: ShellStoreExec;
  #ready: Promise<ExecTarget> | undefined;
  /** The helper container once it runs (before its tools are checked: the check runs in the store's shell). */
  #running: ExecTarget | undefined;
  #detached = false;

  constructor(options: CheckpointHelperOptions) {
    this.#o = options;
    // The store's commands go to one shell in the helper, not an exec each (~40 ms apiece).
    this.#shell = new ShellStoreExec(() => this.#openShell(), {
      ...options.context,
      operation: 'checkpoint',
    });
    const store = new ExecCheckpointStore({
      // Every store command waits for the helper and its tools check (which runs in this shell).
      exec: (argv, opts) => this.#target().then(() => this.#shell.exec(argv, opts)),
      root: STATE,
      storeDir: STORE,
      preserveOwnership: true,
      context: options.context,
      // The sandbox container is paused around each checkpoint (below).
      frozen: true,
      ...(options.manifestKey
        ? { manifestKey: new Uint8Array(Buffer.from(options.manifestKey, 'hex')) }
        : {}),
    });
    // The helper starts first, so the sandbox is never paused while a container starts.
    this.store = frozenCheckpointStore(store, (fn) => this.#target().then(() => options.frozen(fn)));
  }

  /**
   * End this process's shell in the helper (the helper itself stays until the sandbox goes). A
   * helper still starting is let finish first: made after the sandbox's removal looked for it,
   * it would outlive the sandbox and hold its volumes.
   */
  async detach(): Promise<void> {
    this.#detached = true;
    await this.#ready?.catch(() => {});
    this.#shell.close();
  }

  /** The store's shell in the helper: its stdin takes requests, its output answers them. */
  async #openShell(): Promise<ShellPipes> {
    const target = this.#running ?? (await this.#target());
    const { stream } = await openExec(target, {
      argv: ['/bin/sh', '-c', STORE_SHELL],
      user: '0:0',
      env: [PATH],
      stdin: true,
    });
    // Unbounded: the store holds each answer whole anyway (a listing, a manifest).
    const stdout = new StreamQueue(Number.POSITIVE_INFINITY);
    const stderr = new StreamQueue(Number.POSITIVE_INFINITY);
    const demux = new DockerDemuxer((type, chunk) => (type === 'stdout' ? stdout : stderr).push(chunk));
    const ended = new Promise<void>((resolve) => {
      stream.on('data', (chunk: Buffer) => demux.push(chunk));
      whenOver(stream, () => {
        stdout.end();
        stderr.end();
        resolve();
      });
    });
    return { stdout, stderr, write: (chunk) => writeTo(stream, chunk), close: () => stream.destroy(), ended };
  }

  /**
   * A helper image without the tools the store's scripts call fails here, naming them, not in a
   * script. The probe is the store shell's first command: opening that shell is an exec the
   * checkpoint needs anyway, and it then happens before the sandbox is paused.
   */
  async #checkTools(target: ExecTarget): Promise<void> {
    const argv = ['/bin/sh', '-c', TOOLS_PROBE, 'agentbox-probe', ...HELPER_TOOLS];
    const shell = await this.#shell.exec(argv, {}).catch(() => undefined);
    // No store shell: probe in an exec of its own, which tells a daemon error (thrown) from an
    // image without /bin/sh (no answer).
    const stdout = shell
      ? Buffer.from(shell.stdout)
      : (await runExec(target, { argv, user: '0:0', env: [PATH] })).stdout;
    const tools = parseToolsProbe(stdout.toString('utf8'));
    const missing = tools ? tools.missing : ['/bin/sh'];
    if (missing.length === 0) return;
    // The helper goes: the next checkpoint tries again (after the image is fixed, say).
    this.#shell.close();
    await removeHelper(this.#o.client, names.helper(this.#o.sandboxId));
    throw missingToolsError(this.#o.image, 'helperImage', missing, target.context);
  }

  #target(): Promise<ExecTarget> {
    // A checkpoint that reaches here after close began must not start a helper nobody removes.
    if (this.#detached && !this.#ready)
      return Promise.reject(
        new SandboxClosedError('the sandbox is closed', { ...this.#o.context, operation: 'checkpoint' }),
      );
    this.#ready ??= this.#start().catch((error) => {
      this.#ready = undefined;
      this.#running = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #start(): Promise<ExecTarget> {
    const { docker } = this.#o.client;
    const context = { ...this.#o.context, operation: 'checkpoint' };
    const name = names.helper(this.#o.sandboxId);
    const existing = await docker
      .getContainer(name)
      .inspect()
      .catch((error) => {
        if (statusOf(error) === 404) return undefined;
        throw dockerError(error, context, this.#o.client.address);
      });
    let container: Docker.Container;
    if (existing) {
      container = docker.getContainer(existing.Id);
      if (!existing.State.Running)
        await container.start().catch((e) => statusOf(e) === 304 || Promise.reject(e));
    } else {
      await ensureImage(this.#o.client, this.#o.image, { pull: this.#o.pull, field: 'helperImage' }, context);
      const createdAt = new Date().toISOString();
      const storeVolume = names.volume(this.#o.sandboxId, 'store');
      await docker.createVolume({
        Name: storeVolume,
        Labels: labelsFor(this.#o.sandboxId, 'checkpoint-store', createdAt, this.#o.labels),
      });
      try {
        container = await docker.createContainer({
          name,
          Image: this.#o.image,
          Entrypoint: [],
          Cmd: REAPER,
          User: '0:0',
          Env: [PATH],
          Labels: labelsFor(this.#o.sandboxId, 'checkpoint-helper', createdAt, this.#o.labels),
          HostConfig: {
            ReadonlyRootfs: true,
            CapDrop: ['ALL'],
            CapAdd: ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER'],
            SecurityOpt: ['no-new-privileges'],
            NetworkMode: 'none',
            PidsLimit: 256,
            Memory: 512 * 1024 * 1024,
            MemorySwap: 512 * 1024 * 1024,
            Tmpfs: { '/tmp': 'rw,noexec,nosuid,size=16m' },
            Mounts: [
              ...(['workspace', ...(this.#o.skills ? ['skills' as const] : [])] as const).map((role) => ({
                Type: 'volume' as const,
                Source: names.volume(this.#o.sandboxId, role),
                Target: `${STATE}/${role}`,
              })),
              { Type: 'volume', Source: storeVolume, Target: STORE },
            ],
            RestartPolicy: { Name: 'no' },
            LogConfig: { Type: 'none', Config: {} },
          },
        });
      } catch (error) {
        // Another process created it meanwhile (two handles of one sandbox): use that one.
        if (statusOf(error) === 409) return this.#start();
        throw dockerError(error, context, this.#o.client.address);
      }
      await container.start();
      this.#running = { container, context };
      await this.#checkTools(this.#running);
    }
    this.#running = { container, context };
    return this.#running;
  }
}

async function removeHelper(client: DockerClient, name: string): Promise<void> {
  await client.docker
    .getContainer(name)
    .remove({ force: true })
    .catch(() => {});
}
