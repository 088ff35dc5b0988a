/**
 * One Vercel sandbox per agentbox sandbox. Commands run detached under a wrapper (see exec.ts),
 * files go through the SDK's file API, checkpoints are Vercel snapshots (which stop the session:
 * the SDK resumes it on the next call, files kept), and a rollback creates a new Vercel sandbox
 * from a snapshot and swaps it in under the same handle.
 */
import type { Readable } from 'node:stream';
import {
  AbortedError,
  type Capabilities,
  type CheckpointInfo,
  CheckpointNotFoundError,
  type EnforcementReport,
  NotFoundError,
  OutputLimitError,
  type ParsedPolicy,
} from '@agentbox/core';
import {
  assertEnforced,
  BaseSandbox,
  type CheckpointStore,
  type OpenContext,
  type RawProcess,
  type StartRequest,
} from '@agentbox/core/backend';
import { Sandbox, type Snapshot } from '@vercel/sandbox';
import { type VercelCredentials, vercelCredentials, vercelFailure } from './client.js';
import type { VercelResolvedConfig } from './config.js';
import { vercelEnforcement, vercelVcpus } from './enforcement.js';
import { type ExecTransport, startVercelProcess } from './exec.js';
import { probeFile } from './files.js';
import { ID_LABEL, MANAGED_LABEL } from './labels.js';

export const KIND = 'vercel';

const CAPABILITIES: Capabilities = {
  isolation: 'vm',
  checkpoints: true,
  spawn: false,
  stdin: true,
  kill: true,
  nonRootUser: true,
  networkPolicy: true,
  reattach: true,
  unsupported: {
    spawn:
      "Vercel's runCommand takes no stdin: input is uploaded as a file before a command starts, so bytes cannot be written to a command while it runs",
  },
};

/** What `Sandbox.create` gets, bar the source (a rollback adds the snapshot). */
interface CreateParams extends VercelCredentials {
  tags: Record<string, string>;
  timeout: number;
  persistent: boolean;
  resources?: { vcpus: number };
  networkPolicy?: 'deny-all';
  snapshotExpiration?: number;
}

export class VercelSandbox extends BaseSandbox {
  readonly #config: VercelResolvedConfig;
  readonly #credentials: VercelCredentials;
  readonly #createParams: CreateParams;
  readonly #transport: ExecTransport;
  protected readonly checkpoints: CheckpointStore;

  /** @internal Made by the backend's open; its parameter types are the SDK's. */
  constructor(init: {
    id: string;
    sandbox: Sandbox;
    config: VercelResolvedConfig;
    credentials: VercelCredentials;
    createParams: CreateParams;
    workdir: string;
    enforcement: EnforcementReport;
  }) {
    super({
      kind: KIND,
      id: init.id,
      workdir: init.workdir,
      capabilities: CAPABILITIES,
      enforcement: init.enforcement,
      baseEnv: init.config.env,
    });
    this.#config = init.config;
    this.#credentials = init.credentials;
    this.#createParams = init.createParams;
    this.#transport = { sandbox: init.sandbox, stale: [], context: this.context('exec') };
    this.checkpoints = new SnapshotStore(this);
  }

  /**
   * The Vercel sandbox currently behind this handle (it changes at rollback).
   * @internal Typed by the SDK: left out of the published types.
   */
  get vercelSandbox(): Sandbox {
    return this.#transport.sandbox;
  }

  /** @internal The credentials and fetch every SDK call of this handle uses. */
  get credentials(): VercelCredentials {
    return this.#credentials;
  }

  /** @internal How long Vercel keeps a checkpoint's snapshot. */
  get snapshotExpirationMs(): number | undefined {
    return this.#config.snapshotExpirationMs;
  }

  protected async startProcess(req: StartRequest): Promise<RawProcess> {
    return startVercelProcess(this.#transport, req);
  }

  protected async readFileAt(path: string, maxBytes: number): Promise<Uint8Array> {
    const sandbox = this.#transport.sandbox;
    const context = this.context('readFile', path);
    let body: Readable | null;
    try {
      // Typed as a web-style stream; the SDK hands over a Node.js Readable.
      body = (await sandbox.readFile({ path })) as unknown as Readable | null;
    } catch (error) {
      throw (await probeFile(sandbox, path, 'read', context)) ?? vercelFailure(error, context);
    }
    if (body === null)
      throw (
        (await probeFile(sandbox, path, 'read', context)) ??
        new NotFoundError(`${path} does not exist`, context)
      );
    // Stop reading once over the limit: the rest of the file never moves.
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        body.destroy();
        throw new OutputLimitError(`${path} is larger than ${maxBytes} bytes`, maxBytes, undefined, context);
      }
      chunks.push(chunk as Buffer);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }

  protected async writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
  ): Promise<void> {
    const sandbox = this.#transport.sandbox;
    const context = this.context('writeFile', path);
    // The SDK packs files into one tar with their sizes in the headers, so the content is whole first.
    const chunks: Uint8Array[] = [];
    for await (const chunk of data) chunks.push(chunk);
    try {
      await sandbox.writeFiles([{ path, content: Buffer.concat(chunks), mode: mode ?? 0o644 }]);
    } catch (error) {
      throw (await probeFile(sandbox, path, 'write', context)) ?? vercelFailure(error, context);
    }
  }

  /** Create a new Vercel sandbox from a snapshot and put it behind this handle. */
  async restoreFrom(snapshotId: string): Promise<void> {
    const context = this.context('rollback', snapshotId);
    let next: Sandbox;
    try {
      next = await Sandbox.create({ ...this.#createParams, source: { type: 'snapshot', snapshotId } });
    } catch (error) {
      throw vercelFailure(error, context);
    }
    const previous = this.#transport.sandbox;
    await this.swapInstance({
      activate: () => {
        this.#transport.sandbox = next;
        // The old instance's command directories went with it.
        this.#transport.stale.length = 0;
      },
      retire: () => previous.delete().catch(() => {}),
    });
  }

  protected async closeResources(): Promise<void> {
    if (this.#config.keep) return;
    await this.#transport.sandbox.delete().catch((error: unknown) => {
      const failure = vercelFailure(error, this.context('close'));
      if (!(failure instanceof NotFoundError)) throw failure;
    });
    await (this.checkpoints as SnapshotStore).deleteAll();
  }
}

/** Checkpoints are Vercel snapshots; a rollback creates a sandbox from one. */
class SnapshotStore implements CheckpointStore {
  readonly #owner: VercelSandbox;
  readonly #made = new Map<string, { info: CheckpointInfo; snapshot: Snapshot }>();

  constructor(owner: VercelSandbox) {
    this.#owner = owner;
  }

  #context(operation: string, subject?: string) {
    return { backend: KIND, operation, sandboxId: this.#owner.id, ...(subject ? { subject } : {}) };
  }

  async create(opts: {
    label: string | undefined;
    signal: AbortSignal | undefined;
  }): Promise<CheckpointInfo> {
    let snapshot: Snapshot;
    try {
      // Vercel stops the session to take it; the SDK resumes the sandbox at the next call.
      snapshot = await this.#owner.vercelSandbox.snapshot({
        ...(this.#owner.snapshotExpirationMs !== undefined
          ? { expiration: this.#owner.snapshotExpirationMs }
          : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (error) {
      throw vercelFailure(error, this.#context('checkpoint'));
    }
    const info: CheckpointInfo = {
      id: snapshot.snapshotId,
      label: opts.label,
      createdAt: snapshot.createdAt.toISOString(),
      // One Vercel snapshot: the sandbox's whole filesystem.
      entries: 1,
      bytesStored: snapshot.sizeBytes,
    };
    this.#made.set(info.id, { info, snapshot });
    return { ...info };
  }

  #known(id: string, operation: string) {
    const found = this.#made.get(id);
    if (!found)
      throw new CheckpointNotFoundError(
        `no checkpoint ${id} in sandbox ${this.#owner.id}`,
        this.#context(operation, id),
      );
    return found;
  }

  async restore(id: string): Promise<void> {
    this.#known(id, 'rollback');
    await this.#owner.restoreFrom(id);
  }

  async list(): Promise<CheckpointInfo[]> {
    return [...this.#made.values()].map(({ info }) => ({ ...info }));
  }

  async delete(id: string): Promise<void> {
    const { snapshot } = this.#known(id, 'deleteCheckpoint');
    this.#made.delete(id);
    await snapshot.delete().catch((error: unknown) => {
      throw vercelFailure(error, this.#context('deleteCheckpoint', id));
    });
  }

  async deleteAll(): Promise<void> {
    const all = [...this.#made.values()];
    this.#made.clear();
    await Promise.all(all.map(({ snapshot }) => snapshot.delete().catch(() => {})));
  }
}

export async function openVercelSandbox(ctx: OpenContext<VercelResolvedConfig>): Promise<VercelSandbox> {
  const { id, config, policy, strict, signal } = ctx;
  const context = { backend: KIND, operation: 'open', sandboxId: id };
  const aborted = () => new AbortedError('open aborted', { ...context, cause: signal?.reason });
  if (signal?.aborted) throw aborted();
  // Refuse what cannot be enforced before anything is created.
  if (strict) assertEnforced(policy, vercelEnforcement(policy, undefined), context);
  const credentials = vercelCredentials(config, context);
  const createParams = createParamsFor(id, config, policy, credentials);
  let sandbox: Sandbox | undefined;
  let created = false;
  try {
    if (ctx.idGiven) sandbox = await findSandbox(credentials, id, signal);
    if (!sandbox) {
      // Not aborted midway: the service would finish a create whose answer we dropped, and
      // leave a sandbox nobody knows of. An abort is honoured once it is created (and deleted).
      sandbox = await Sandbox.create({ ...createParams });
      created = true;
    }
    if (signal?.aborted) throw aborted();
    const enforcement = vercelEnforcement(policy, {
      networkPolicy: sandbox.networkPolicy,
      vcpus: sandbox.vcpus,
    });
    if (strict) assertEnforced(policy, enforcement, context);
    return new VercelSandbox({
      id,
      sandbox,
      config,
      credentials,
      createParams,
      workdir: config.workdir ?? sandbox.cwd,
      enforcement,
    });
  } catch (error) {
    // Nothing is left behind by an open that fails or is aborted halfway (a re-attached sandbox stays).
    if (sandbox && created) await sandbox.delete().catch(() => {});
    if (signal?.aborted && !(error instanceof AbortedError)) throw aborted();
    throw vercelFailure(error, context);
  }
}

function createParamsFor(
  id: string,
  config: VercelResolvedConfig,
  policy: ParsedPolicy,
  credentials: VercelCredentials,
): CreateParams {
  const vcpus = vercelVcpus(policy);
  return {
    ...credentials,
    tags: { ...(policy.labels ?? {}), [MANAGED_LABEL]: 'true', [ID_LABEL]: id },
    timeout: config.sandboxTimeoutMs,
    // The filesystem survives a stopped session (a snapshot, the timeout): the SDK resumes into it.
    persistent: true,
    ...(vcpus !== undefined ? { resources: { vcpus } } : {}),
    ...(policy.network?.mode === 'none' ? { networkPolicy: 'deny-all' as const } : {}),
    ...(config.snapshotExpirationMs !== undefined ? { snapshotExpiration: config.snapshotExpirationMs } : {}),
  };
}

/** The Vercel sandbox tagged with this agentbox id, resumed, if there is one. */
async function findSandbox(
  credentials: VercelCredentials,
  id: string,
  signal: AbortSignal | undefined,
): Promise<Sandbox | undefined> {
  const found = await Sandbox.list({
    ...credentials,
    tags: { [ID_LABEL]: id },
    ...(signal ? { signal } : {}),
  });
  const first = found.sandboxes[0];
  if (!first) return undefined;
  return Sandbox.get({ ...credentials, name: first.name, resume: true, ...(signal ? { signal } : {}) });
}
