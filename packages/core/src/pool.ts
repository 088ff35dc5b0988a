/**
 * A warm pool: sandboxes of one spec opened ahead of time, so that `pool.open()` hands one out
 * at once. Each sandbox is handed out once and never comes back (a fresh one every time, so
 * nothing leaks between tasks); the pool refills in the background. Every sandbox it opens
 * carries the label `agentbox.pool=<name>`, so a backend's sweep finds them after a crash.
 * Works with any backend: it only calls `openSandbox` and `close`.
 */
import { z } from 'zod';
import {
  type AgentboxError,
  InvalidArgumentError,
  SandboxClosedError,
  SandboxUnavailableError,
  toAgentboxError,
} from './errors.js';
import { abortSignalSchema } from './options.js';
import {
  type BackendRegistry,
  defaultRegistry,
  type KnownBackendKind,
  openSandbox,
  parseBackendConfig,
  SandboxIdSchema,
  type SandboxSpec,
  SandboxSpecSchema,
} from './registry.js';
import type { SandboxBackend } from './types.js';
import { parseArgument } from './validate.js';

/** The label every sandbox of a pool carries: its value is the pool's name. */
export const POOL_LABEL = 'agentbox.pool';

export interface PoolOptions<Kind extends string = string> {
  /** What each sandbox is opened with, as `openSandbox` takes it (without an `id`: each sandbox gets its own). */
  spec: SandboxSpec<Kind>;
  /** How many sandboxes to keep ready. */
  size: number;
  /**
   * The pool's name, the value of its `agentbox.pool` label: sweep with it after a crash. Give
   * each process its own name if several share a backend. Default: `pool-` and 8 random characters.
   */
  name?: string;
  /**
   * Called with each error of a background refill. Without it, the next `open()` rejects with
   * the error. Either way the pool stops refilling after a failure until the next `open()`.
   */
  onError?: (error: AgentboxError) => void;
  /**
   * Run `true` once in each sandbox before it counts as ready (default true): whatever a backend
   * opens at the first command (a session shell, a channel) is open before the sandbox is handed
   * out. A warm-up that fails or exits non-zero is a refill error, and that sandbox is closed.
   */
  warmup?: boolean;
  /**
   * Also open each sandbox's checkpoint store before it counts as ready (default false), so the
   * first checkpoint of a sandbox handed out costs only its tree. On docker that starts the
   * sandbox's checkpoint helper container: ~250 ms off the first checkpoint here, for one more
   * container per sandbox, kept while it lives. Ignored where a backend keeps no checkpoints.
   */
  warmCheckpoints?: boolean;
  registry?: BackendRegistry;
}

export interface PoolOpenOptions {
  /** Aborts opening a fresh sandbox when the pool is empty (a ready one is handed out at once). */
  signal?: AbortSignal;
}

export interface SandboxPool extends AsyncDisposable {
  readonly name: string;
  readonly size: number;
  /** The labels on every sandbox of the pool: pass them to a backend's sweep to find them. */
  readonly labels: Readonly<Record<string, string>>;
  /** Sandboxes ready to be handed out now. */
  readonly idle: number;
  /**
   * A sandbox of the pool's spec, never handed out before: a ready one at once, else a fresh
   * one opened for this call. It belongs to the caller, who closes it. Rejects with the error
   * of a failed background refill if no `onError` took it, and with SandboxClosedError after close.
   */
  open(options?: PoolOpenOptions): Promise<SandboxBackend>;
  /** Resolves once `size` sandboxes are ready; rejects with a refill's error or SandboxClosedError. */
  ready(): Promise<void>;
  /**
   * Stop refilling and close every sandbox that is ready or still opening; the ones handed out
   * stay open. Idempotent. Rejects with the first error of closing one (after trying them all).
   */
  close(): Promise<void>;
}

const PoolOptionsSchema = z.strictObject({
  spec: z.unknown(),
  size: z.number().int().positive().max(1000),
  name: SandboxIdSchema.optional(),
  onError: z
    .custom<(error: AgentboxError) => void>((value) => typeof value === 'function', 'must be a function')
    .optional(),
  warmup: z.boolean().default(true),
  warmCheckpoints: z.boolean().default(false),
  registry: z
    .custom<BackendRegistry>(
      (value) => typeof (value as BackendRegistry | null)?.get === 'function',
      'must be a BackendRegistry',
    )
    .optional(),
});

const PoolOpenOptionsSchema = z.strictObject({ signal: abortSignalSchema.optional() });

/**
 * Keep `size` sandboxes of `spec` ready. Checks the options and the spec now (and the backend's
 * config when its kind is registered); the sandboxes open in the background.
 */
export function createPool<Kind extends KnownBackendKind | (string & {})>(
  options: PoolOptions<Kind>,
): SandboxPool {
  const context = { operation: 'createPool' };
  const parsed = parseArgument(PoolOptionsSchema, options, { what: 'pool options', context });
  const spec = parseArgument(SandboxSpecSchema, parsed.spec, {
    what: 'sandbox spec',
    prefix: 'spec',
    context: { ...context, backend: (options.spec as { backend?: string } | undefined)?.backend },
  });
  const backendContext = { ...context, backend: spec.backend };
  if (spec.id !== undefined)
    throw new InvalidArgumentError('a pool opens many sandboxes, so its spec cannot name one id', {
      ...backendContext,
      issues: ['spec.id: not allowed in a pool spec (each sandbox gets its own id)'],
    });
  const name = parsed.name ?? `pool-${crypto.randomUUID().slice(0, 8)}`;
  const given = spec.policy.labels?.[POOL_LABEL];
  if (given !== undefined && given !== name)
    throw new InvalidArgumentError(
      `the spec's ${POOL_LABEL} label (${given}) is not the pool's name (${name})`,
      {
        ...backendContext,
        issues: [`spec.policy.labels.${POOL_LABEL}: set by the pool; pass the name as options.name`],
      },
    );
  const registry = parsed.registry ?? defaultRegistry;
  const def = registry.get(spec.backend);
  if (def) parseBackendConfig(spec.backend, def.configSchema, spec.config, 'createPool');
  const labels = { [POOL_LABEL]: name };
  // The caller's spec as given (the backend parses its config itself), with the pool's label added.
  const asGiven = options.spec as SandboxSpec;
  const pooledSpec: SandboxSpec = {
    ...asGiven,
    policy: { ...asGiven.policy, labels: { ...asGiven.policy?.labels, ...labels } },
  };
  return new Pool({
    name,
    size: parsed.size,
    labels,
    spec: pooledSpec,
    registry,
    onError: parsed.onError,
    warmup: parsed.warmup,
    warmCheckpoints: parsed.warmCheckpoints,
  });
}

interface PoolInit {
  name: string;
  size: number;
  labels: Record<string, string>;
  spec: SandboxSpec;
  registry: BackendRegistry;
  onError: ((error: AgentboxError) => void) | undefined;
  warmup: boolean;
  warmCheckpoints: boolean;
}

class Pool implements SandboxPool {
  readonly name: string;
  readonly size: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly #spec: SandboxSpec;
  readonly #registry: BackendRegistry;
  readonly #onError: ((error: AgentboxError) => void) | undefined;
  readonly #warmup: boolean;
  readonly #warmCheckpoints: boolean;
  /** Ready sandboxes, oldest first. */
  readonly #idle: SandboxBackend[] = [];
  /** Refills under way. */
  readonly #opening = new Set<Promise<void>>();
  /** Aborts the refills under way when the pool closes. */
  readonly #stop = new AbortController();
  /** A refill's error no `onError` took: the next open() rejects with it. */
  #failure: AgentboxError | undefined;
  /** After a failed refill, no more until the next open(): a broken spec does not loop. */
  #paused = false;
  #closing: Promise<void> | undefined;
  #waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];

  constructor(init: PoolInit) {
    this.name = init.name;
    this.size = init.size;
    this.labels = Object.freeze({ ...init.labels });
    this.#spec = init.spec;
    this.#registry = init.registry;
    this.#onError = init.onError;
    this.#warmup = init.warmup;
    this.#warmCheckpoints = init.warmCheckpoints;
    this.#fill();
  }

  get idle(): number {
    return this.#idle.length;
  }

  async open(options: PoolOpenOptions = {}): Promise<SandboxBackend> {
    const { signal } = parseArgument(PoolOpenOptionsSchema, options, {
      what: 'pool open options',
      context: this.#context('pool.open'),
    });
    if (this.#closing) throw this.#closedError('pool.open');
    const failure = this.#failure;
    this.#failure = undefined;
    this.#paused = false;
    if (failure) {
      this.#fill();
      throw failure;
    }
    const ready = this.#idle.shift();
    this.#fill();
    if (ready) return ready;
    return openSandbox(this.#spec, { registry: this.#registry, ...(signal ? { signal } : {}) });
  }

  ready(): Promise<void> {
    if (this.#closing) return Promise.reject(this.#closedError('pool.ready'));
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#idle.length >= this.size) return Promise.resolve();
    // Waiting would never end if refills are paused: start them again.
    this.#paused = false;
    this.#fill();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  close(): Promise<void> {
    this.#closing ??= this.#drain();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #drain(): Promise<void> {
    this.#stop.abort(this.#closedError('pool.refill'));
    this.#settleWaiters(this.#closedError('pool.ready'));
    const idle = this.#idle.splice(0);
    // A refill that finishes now closes its own sandbox (see #refill).
    const results = await Promise.allSettled([...idle.map((sandbox) => sandbox.close()), ...this.#opening]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw toAgentboxError(failed.reason, this.#context('pool.close'));
  }

  /** Start refills until ready and opening sandboxes together make `size`. */
  #fill(): void {
    while (!this.#closing && !this.#paused && this.#idle.length + this.#opening.size < this.size) {
      const refill: Promise<void> = this.#refill().finally(() => this.#opening.delete(refill));
      this.#opening.add(refill);
    }
  }

  async #refill(): Promise<void> {
    let sandbox: SandboxBackend;
    try {
      sandbox = await openSandbox(this.#spec, { registry: this.#registry, signal: this.#stop.signal });
      if (this.#warmup || this.#warmCheckpoints) await this.#warm(sandbox);
    } catch (error) {
      // Closing aborts the refills under way: that is no failure.
      if (!this.#closing) this.#failed(toAgentboxError(error, this.#context('pool.refill')));
      return;
    }
    if (this.#closing) {
      await sandbox.close();
      return;
    }
    this.#idle.push(sandbox);
    if (this.#idle.length >= this.size) this.#settleWaiters();
  }

  async #warm(sandbox: SandboxBackend): Promise<void> {
    try {
      if (this.#warmup) {
        const result = await sandbox.exec(['true'], { signal: this.#stop.signal });
        if (result.exitCode !== 0)
          throw new SandboxUnavailableError(`the warm-up command (true) exited ${result.exitCode}`, {
            backend: sandbox.kind,
            operation: 'pool.refill',
            sandboxId: sandbox.id,
          });
      }
      // Listing opens the store (and whatever keeps it) and changes nothing.
      if (this.#warmCheckpoints && sandbox.capabilities.checkpoints) await sandbox.listCheckpoints();
    } catch (error) {
      await sandbox.close().catch(() => {});
      throw error;
    }
  }

  #failed(error: AgentboxError): void {
    this.#paused = true;
    this.#settleWaiters(error);
    if (this.#onError) {
      try {
        this.#onError(error);
      } catch {
        // A throwing callback must not break the pool; the error was delivered.
      }
    } else this.#failure = error;
  }

  #settleWaiters(error?: unknown): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
  }

  #context(operation: string) {
    return { backend: this.#spec.backend, operation };
  }

  #closedError(operation: string): SandboxClosedError {
    return new SandboxClosedError(`pool ${this.name} is closed`, this.#context(operation));
  }
}
