/**
 * createPool: the pool's promises over a backend registered for these tests only (its sandboxes
 * are records in memory, so every open and close is counted), and a crash of a process holding
 * a pool of twin sandboxes (test/fixtures/backend-twin) that the twin's sweep cleans up.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AgentboxError,
  createPool,
  NotFoundError,
  POOL_LABEL,
  type SandboxBackend,
  SandboxUnavailableError,
} from '../src/index.ts';
import { enforcementReport } from '../src/policy.ts';
import { BackendRegistry, type OpenContext } from '../src/registry.ts';
import { twin } from './fixtures/backend-twin/index.ts';

/** A sandbox of the memory backend: files in a map, and whether it was closed. */
class MemorySandbox {
  readonly kind = 'memory';
  readonly workdir = '/';
  readonly files = new Map<string, string>();
  readonly commands: unknown[] = [];
  /** What the next commands exit with. */
  exitCode = 0;
  closed = false;
  /** Calls of listCheckpoints; it fails with `listError` when set. */
  listed = 0;
  listError: Error | undefined;
  capabilities = { checkpoints: true };
  constructor(
    readonly id: string,
    readonly labels: Record<string, string>,
  ) {}
  readonly enforcement = enforcementReport({ status: 'enforced', detail: 'in memory' });
  async exec(command: unknown): Promise<{ exitCode: number }> {
    this.commands.push(command);
    return { exitCode: this.exitCode };
  }
  async writeFile(path: string, data: string): Promise<void> {
    this.files.set(path, data);
  }
  async readTextFile(path: string): Promise<string> {
    const data = this.files.get(path);
    if (data === undefined) throw new NotFoundError(`${path}: no such file`);
    return data;
  }
  async listCheckpoints(): Promise<[]> {
    this.listed++;
    if (this.listError) throw this.listError;
    return [];
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The memory backend, with a switch that makes its opens fail and a gate that holds them. */
function memoryBackend() {
  const opened: MemorySandbox[] = [];
  const state = {
    opened,
    failWith: undefined as Error | undefined,
    gate: undefined as Promise<void> | undefined,
    /** What the commands of sandboxes opened from now on exit with. */
    exitCode: 0,
    /** What the checkpoint listings of sandboxes opened from now on fail with. */
    listError: undefined as Error | undefined,
    /** Whether sandboxes opened from now on keep checkpoints. */
    checkpoints: true,
  };
  const registry = new BackendRegistry();
  registry.register({
    kind: 'memory',
    configSchema: z.strictObject({}),
    async open(ctx: OpenContext<unknown>): Promise<SandboxBackend> {
      await state.gate;
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      if (state.failWith) throw state.failWith;
      const sandbox = new MemorySandbox(ctx.id, ctx.policy.labels ?? {});
      sandbox.exitCode = state.exitCode;
      sandbox.listError = state.listError;
      sandbox.capabilities = { checkpoints: state.checkpoints };
      opened.push(sandbox);
      return sandbox as unknown as SandboxBackend;
    },
  });
  return { registry, state };
}

function asMemory(sandbox: SandboxBackend): MemorySandbox {
  return sandbox as unknown as MemorySandbox;
}

describe('createPool', () => {
  it('hands out a fresh sandbox every time: a file written in one is absent from the next', async () => {
    const { registry } = memoryBackend();
    await using pool = createPool({ spec: { backend: 'memory' }, size: 2, registry });
    await pool.ready();
    const first = await pool.open();
    await first.writeFile('note.txt', 'from the first task');
    await first.close();
    const second = await pool.open();
    expect(second.id).not.toBe(first.id);
    await expect(second.readTextFile('note.txt')).rejects.toBeInstanceOf(NotFoundError);
    expect(asMemory(second).closed).toBe(false);
    await second.close();
  });

  it('labels every sandbox with the pool name', async () => {
    const { registry, state } = memoryBackend();
    await using pool = createPool({
      spec: { backend: 'memory', policy: { labels: { team: 'research' } } },
      size: 2,
      name: 'labelled-pool',
      registry,
    });
    await pool.ready();
    expect(pool.labels).toEqual({ [POOL_LABEL]: 'labelled-pool' });
    const fresh = await pool.open();
    expect(state.opened.map((s) => s.labels)).toEqual(
      state.opened.map(() => ({ team: 'research', [POOL_LABEL]: 'labelled-pool' })),
    );
    expect(state.opened.length).toBeGreaterThanOrEqual(2);
    await fresh.close();
  });

  it('refills in the background after each open', async () => {
    const { registry, state } = memoryBackend();
    await using pool = createPool({ spec: { backend: 'memory' }, size: 3, registry });
    await pool.ready();
    expect(pool.idle).toBe(3);
    const taken = [await pool.open(), await pool.open()];
    expect(pool.idle).toBe(1);
    await pool.ready();
    expect(pool.idle).toBe(3);
    expect(state.opened).toHaveLength(5);
    for (const sandbox of taken) await sandbox.close();
  });

  it('opens a fresh sandbox when none is ready, rather than waiting', async () => {
    const { registry, state } = memoryBackend();
    let release!: () => void;
    state.gate = new Promise((resolve) => {
      release = resolve;
    });
    const pool = createPool({ spec: { backend: 'memory' }, size: 1, registry });
    expect(pool.idle).toBe(0);
    const opening = pool.open();
    release();
    const sandbox = await opening;
    expect(asMemory(sandbox).closed).toBe(false);
    await pool.close();
    expect(asMemory(sandbox).closed).toBe(false);
    await sandbox.close();
  });

  it('close drains: every sandbox not handed out is closed, the handed-out ones stay open', async () => {
    const { registry, state } = memoryBackend();
    const pool = createPool({ spec: { backend: 'memory' }, size: 3, registry });
    await pool.ready();
    const mine = await pool.open();
    // One refill is held at the gate while the pool closes: it is closed when it lands.
    let release!: () => void;
    state.gate = new Promise((resolve) => {
      release = resolve;
    });
    const closing = pool.close();
    release();
    await closing;
    expect(pool.idle).toBe(0);
    const others = state.opened.filter((s) => s.id !== mine.id);
    expect(others.length).toBeGreaterThanOrEqual(2);
    expect(others.every((s) => s.closed)).toBe(true);
    expect(asMemory(mine).closed).toBe(false);
    await expect(pool.open()).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
    await expect(pool.ready()).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' });
    await pool.close(); // idempotent
    await mine.close();
  });

  it('a refill error makes the next open reject with the typed cause, once', async () => {
    const { registry, state } = memoryBackend();
    state.failWith = new SandboxUnavailableError('the daemon went away');
    const pool = createPool({ spec: { backend: 'memory' }, size: 2, registry });
    const error = await pool.ready().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as AgentboxError).backend).toBe('memory');
    expect((error as AgentboxError).message).toContain('the daemon went away');
    // The backend works again: the error is still delivered, once, then the pool works.
    state.failWith = undefined;
    await expect(pool.open()).rejects.toBeInstanceOf(SandboxUnavailableError);
    const sandbox = await pool.open();
    expect(asMemory(sandbox).closed).toBe(false);
    await pool.ready();
    await pool.close();
    await sandbox.close();
  });

  it('a refill error goes to onError when one is given, and the pool stops refilling', async () => {
    const { registry, state } = memoryBackend();
    state.failWith = new Error('disk full');
    const errors: AgentboxError[] = [];
    const pool = createPool({
      spec: { backend: 'memory' },
      size: 2,
      registry,
      onError: (e) => errors.push(e),
    });
    await expect(pool.ready()).rejects.toBeInstanceOf(AgentboxError);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]).toBeInstanceOf(AgentboxError);
    expect(errors[0]?.message).toContain('disk full');
    const seen = errors.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    // No retry loop: refills wait for the next open.
    expect(errors.length).toBe(seen);
    // open() opens a fresh one (which fails the same way) instead of replaying the error.
    await expect(pool.open()).rejects.toThrow('disk full');
    await pool.close();
  });

  it('runs true once in each sandbox before it is ready; a failed warm-up is a refill error', async () => {
    const { registry, state } = memoryBackend();
    const pool = createPool({ spec: { backend: 'memory' }, size: 2, registry });
    await pool.ready();
    expect(state.opened.map((s) => s.commands)).toEqual([[['true']], [['true']]]);
    await pool.close();

    state.exitCode = 1;
    const broken = createPool({ spec: { backend: 'memory' }, size: 1, registry });
    await expect(broken.ready()).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE' });
    expect(state.opened.at(-1)?.closed).toBe(true);
    await broken.close();

    const cold = createPool({ spec: { backend: 'memory' }, size: 1, registry, warmup: false });
    await cold.ready();
    expect(state.opened.at(-1)?.commands).toEqual([]);
    await cold.close();
  });

  it('with warmCheckpoints, lists the checkpoints of each sandbox before it is ready (not by default); a failed listing is a refill error', async () => {
    const { registry, state } = memoryBackend();
    const plain = createPool({ spec: { backend: 'memory' }, size: 1, registry });
    await plain.ready();
    expect(state.opened.at(-1)?.listed).toBe(0);
    await plain.close();

    const warm = createPool({ spec: { backend: 'memory' }, size: 2, registry, warmCheckpoints: true });
    await warm.ready();
    expect(state.opened.slice(-2).map((s) => [s.commands, s.listed])).toEqual([
      [[['true']], 1],
      [[['true']], 1],
    ]);
    await warm.close();

    // Without the exec warm-up, only the listing; where no checkpoints are kept, nothing.
    const only = createPool({
      spec: { backend: 'memory' },
      size: 1,
      registry,
      warmup: false,
      warmCheckpoints: true,
    });
    await only.ready();
    expect([state.opened.at(-1)?.commands, state.opened.at(-1)?.listed]).toEqual([[], 1]);
    await only.close();
    state.checkpoints = false;
    const none = createPool({ spec: { backend: 'memory' }, size: 1, registry, warmCheckpoints: true });
    await none.ready();
    expect(state.opened.at(-1)?.listed).toBe(0);
    await none.close();

    state.checkpoints = true;
    state.listError = new SandboxUnavailableError('the helper would not start');
    const broken = createPool({ spec: { backend: 'memory' }, size: 1, registry, warmCheckpoints: true });
    await expect(broken.ready()).rejects.toThrow('the helper would not start');
    expect(state.opened.at(-1)?.closed).toBe(true);
    await broken.close();
  });

  it('refuses a spec with an id, a bad size and an unknown option', () => {
    const { registry } = memoryBackend();
    expect(() => createPool({ spec: { backend: 'memory', id: 'one' }, size: 1, registry })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => createPool({ spec: { backend: 'memory' }, size: 0, registry })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => createPool({ spec: { backend: 'memory' }, size: 1, registry, sise: 2 } as never)).toThrow(
      /sise/,
    );
  });

  it('await using closes the pool', async () => {
    const { registry, state } = memoryBackend();
    {
      await using pool = createPool({ spec: { backend: 'memory' }, size: 2, registry });
      await pool.ready();
    }
    expect(state.opened.every((s) => s.closed)).toBe(true);
  });
});

describe('createPool after a crash', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("sweep finds a SIGKILLed process's pooled sandboxes by the pool label", async () => {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-pool-crash-'));
    dirs.push(root);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./fixtures/pool-holder.ts', import.meta.url)), root, '3'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          TSX_TSCONFIG_PATH: fileURLToPath(new URL('../../../tsconfig.base.json', import.meta.url)),
        },
      },
    );
    const name = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /^ready (\S+)$/m.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) =>
        reject(new Error(`the pool holder exited (${code}) before its pool was ready`)),
      );
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const sweep = twin.sweep!;
    const config = { root, keep: false };
    const found = await sweep({ config, dryRun: true, labels: { [POOL_LABEL]: name } });
    expect(found.sandboxes).toHaveLength(3);
    // Another pool's label matches none of them.
    const other = await sweep({ config, dryRun: true, labels: { [POOL_LABEL]: `${name}-other` } });
    expect(other.sandboxes).toHaveLength(0);
    const removed = await sweep({ config, dryRun: false, labels: { [POOL_LABEL]: name } });
    expect(removed.sandboxes.every((s) => s.removed)).toBe(true);
    expect((await sweep({ config, dryRun: true })).sandboxes).toHaveLength(0);
  });
});
