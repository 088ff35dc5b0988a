/**
 * The local backend: a working directory on this machine. It isolates nothing — commands run as
 * the current user with the host's filesystem and network — and says so in its enforcement
 * report; a strict policy that asks for any isolation control refuses to open it.
 */
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  assertEnforced,
  BaseSandbox,
  type CheckpointStore,
  defineBackend,
  enforcementReport,
  type HostProcess,
  IsADirectoryError,
  type OpenContext,
  OutputLimitError,
  type RawProcess,
  registerBackend,
  SandboxUnavailableError,
  type StartRequest,
  startHostProcess,
  TreeCheckpointStore,
} from '@agentbox/core';
import { z } from 'zod';

export const LocalConfigSchema = z.strictObject({
  /** Directory under which each sandbox gets `<id>/workspace` and `<id>/checkpoints`. */
  root: z.string().min(1).default(join(tmpdir(), 'agentbox-local')),
  /** Keep the sandbox directory on close (to re-attach later by id). */
  keep: z.boolean().default(false),
});
export type LocalConfig = z.input<typeof LocalConfigSchema>;

const NOT_ISOLATED = {
  status: 'not-supported',
  detail: 'the local backend runs commands directly on the host as the current user',
} as const;

export class LocalSandbox extends BaseSandbox {
  protected readonly checkpoints: CheckpointStore;
  readonly #dir: string;
  readonly #keep: boolean;
  readonly #running = new Set<HostProcess>();

  constructor(id: string, dir: string, keep: boolean) {
    const isRoot = process.getuid?.() === 0;
    super({
      kind: 'local',
      id,
      workdir: join(dir, 'workspace'),
      capabilities: {
        isolation: 'none',
        checkpoints: true,
        spawn: true,
        nonRootUser: !isRoot,
        reattach: true,
      },
      enforcement: enforcementReport(NOT_ISOLATED, {
        nonRootUser: isRoot
          ? { status: 'not-supported', detail: 'this process runs as root, so commands do too' }
          : { status: 'enforced', detail: `commands run as uid ${process.getuid?.()}` },
        network: { status: 'not-supported', detail: 'commands share the host network' },
        checkpointIntegrity: {
          status: 'not-supported',
          detail: 'the checkpoint store is on the host, writable by commands (they run as the same user)',
        },
      }),
    });
    this.#dir = dir;
    this.#keep = keep;
    this.checkpoints = new TreeCheckpointStore({ root: this.workdir, storeDir: join(dir, 'checkpoints') });
  }

  protected async startProcess(req: StartRequest): Promise<RawProcess> {
    const proc = startHostProcess(req);
    this.#running.add(proc);
    void proc.exit.then(() => this.#running.delete(proc));
    return proc;
  }

  protected async readFileAt(path: string, maxBytes: number): Promise<Uint8Array> {
    const st = await fs.stat(path);
    if (st.isDirectory()) throw new IsADirectoryError(`${path} is a directory`);
    if (st.size > maxBytes)
      throw new OutputLimitError(
        `${path} is ${st.size} bytes, over the ${maxBytes}-byte read limit`,
        maxBytes,
        st.size,
      );
    return fs.readFile(path);
  }

  protected async writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await fs.mkdir(dirname(path), { recursive: true });
    await pipeline(data, createWriteStream(path, { mode: mode ?? 0o644 }), { signal });
    if (mode !== undefined) await fs.chmod(path, mode);
  }

  protected async closeResources(): Promise<void> {
    await Promise.all([...this.#running].map((proc) => proc.kill('SIGKILL').catch(() => {})));
    if (!this.#keep) await fs.rm(this.#dir, { recursive: true, force: true });
  }
}

async function openLocal({
  id,
  idGiven,
  config,
  policy,
  strict,
  signal,
}: OpenContext<z.output<typeof LocalConfigSchema>>) {
  const dir = join(resolve(config.root), id);
  const probe = new LocalSandbox(id, dir, config.keep);
  // Refuse before creating anything, so a refused open leaves nothing behind.
  if (strict) assertEnforced(policy, probe.enforcement, { backend: 'local', sandboxId: id });
  const existed = await fs.stat(probe.workdir).then(
    (st) => st.isDirectory(),
    () => false,
  );
  if (existed && !idGiven) throw new SandboxUnavailableError(`sandbox directory ${dir} already exists`);
  signal?.throwIfAborted();
  if (!existed) {
    await fs.mkdir(probe.workdir, { recursive: true, mode: 0o700 });
    if (signal?.aborted) {
      await fs.rm(dir, { recursive: true, force: true });
      signal.throwIfAborted();
    }
  }
  return probe;
}

export const local = defineBackend({ kind: 'local', configSchema: LocalConfigSchema, open: openLocal });
registerBackend(local);
