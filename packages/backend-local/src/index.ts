/**
 * The local backend: a working directory on this machine. It isolates nothing — commands run as
 * the current user with the host's filesystem and network — and says so in its enforcement
 * report; a strict policy that asks for any isolation control refuses to open it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
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
  IsADirectoryError,
  NotFoundError,
  type OpenContext,
  OutputLimitError,
  type RawProcess,
  registerBackend,
  SandboxUnavailableError,
  type StartRequest,
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
  readonly #children = new Set<ChildProcess>();

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
      }),
    });
    this.#dir = dir;
    this.#keep = keep;
    this.checkpoints = new TreeCheckpointStore({ root: this.workdir, storeDir: join(dir, 'checkpoints') });
  }

  protected async startProcess(req: StartRequest): Promise<RawProcess> {
    const cwd = await fs.stat(req.cwd).catch(() => undefined);
    if (!cwd?.isDirectory()) throw new NotFoundError(`working directory ${req.cwd} does not exist`);
    const [program, ...args] = req.argv;
    // detached: the command leads a new process group, so a signal to -pid reaches its whole tree.
    const child = spawn(program!, args, { cwd: req.cwd, env: req.env, detached: true, stdio: 'pipe' });
    this.#children.add(child);
    const exit = new Promise<{ exitCode: number | null; signal: string | null }>((resolveExit) => {
      child.once('exit', (code, signal) => resolveExit({ exitCode: code, signal }));
      // A program that cannot be started is the shell's "command not found" (127) or "not executable" (126).
      child.once('error', (error: NodeJS.ErrnoException) => {
        if (child.pid !== undefined) return;
        const code = error.code === 'ENOENT' ? 127 : 126;
        child.stderr?.push(`${program}: ${code === 127 ? 'command not found' : 'permission denied'}\n`);
        child.stderr?.push(null);
        child.stdout?.push(null);
        resolveExit({ exitCode: code, signal: null });
      });
    }).finally(() => this.#children.delete(child));
    child.stdin.on('error', () => {}); // EPIPE when the command exits without reading: reported by writeStdin.

    return {
      stdout: child.stdout,
      stderr: child.stderr,
      exit,
      async writeStdin(chunk) {
        if (child.stdin.destroyed || child.stdin.writableEnded) throw new Error('stdin is closed (EPIPE)');
        if (!child.stdin.write(chunk)) {
          await Promise.race([once(child.stdin, 'drain'), once(child.stdin, 'close').then(() => {})]);
        }
      },
      async closeStdin() {
        child.stdin.end();
      },
      async kill(signal) {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, signal);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
        }
      },
    };
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
    for (const child of this.#children) {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
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
