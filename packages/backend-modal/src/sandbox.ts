/**
 * One Modal sandbox per agentbox sandbox. Commands run under a wrapper through the SDK's exec
 * (see exec.ts), files go through the SDK's filesystem API, checkpoints are filesystem snapshots
 * (images), and a rollback creates a new Modal sandbox from one and swaps it in under the same
 * handle; the one it replaces is terminated.
 */
import {
  AbortedError,
  type Capabilities,
  type CheckpointInfo,
  CheckpointNotFoundError,
  type EnforcementReport,
  NotFoundError,
  OutputLimitError,
} from '@agentbox/core';
import {
  assertEnforced,
  BaseSandbox,
  type CheckpointStore,
  type OpenContext,
  type RawProcess,
  SessionPool,
  type StartRequest,
} from '@agentbox/core/backend';
import type { App, Image, ModalClient, Sandbox, SandboxCreateParams } from 'modal';
import { modalClient, modalFailure } from './client.js';
import type { ModalResolvedConfig } from './config.js';
import { modalEnforcement, modalPolicyParams } from './enforcement.js';
import { type ExecTransport, startModalProcess } from './exec.js';
import { ID_LABEL, MANAGED_LABEL } from './labels.js';

export const KIND = 'modal';

const CAPABILITIES: Capabilities = {
  isolation: 'vm',
  checkpoints: true,
  spawn: true,
  stdin: true,
  kill: true,
  nonRootUser: false,
  networkPolicy: true,
  reattach: true,
  unsupported: {
    nonRootUser: 'commands in a Modal sandbox run as root',
  },
};

/** Where a handle's sandboxes come from: the SDK client, app, and what every create gets. */
interface Origin {
  client: ModalClient;
  app: App;
  params: SandboxCreateParams;
}

export class ModalSandbox extends BaseSandbox {
  readonly #config: ModalResolvedConfig;
  readonly #origin: Origin;
  readonly #transport: ExecTransport;
  /** The fast exec path of the current instance (a rollback opens a new one). */
  #sessions: SessionPool;
  protected readonly checkpoints: CheckpointStore;

  /** @internal Made by the backend's open; its parameter types are the SDK's. */
  constructor(init: {
    id: string;
    sandbox: Sandbox;
    config: ModalResolvedConfig;
    origin: Origin;
    enforcement: EnforcementReport;
  }) {
    super({
      kind: KIND,
      id: init.id,
      workdir: init.config.workdir,
      capabilities: CAPABILITIES,
      enforcement: init.enforcement,
      baseEnv: init.config.env,
    });
    this.#config = init.config;
    this.#origin = init.origin;
    this.#transport = { sandbox: init.sandbox, stale: [], context: this.context('exec') };
    this.checkpoints = new SnapshotStore(this, (image) => this.#restoreFrom(image));
    this.#sessions = this.#newPool();
  }

  /** Sessions on the instance the transport points at (the plain path: one exec per command). */
  #newPool(): SessionPool {
    return new SessionPool({
      startProcess: (req) => startModalProcess(this.#transport, req),
      enabled: this.#config.sessions,
      context: this.context('exec'),
    });
  }

  /** @internal The session pool, for tests and diagnostics. */
  get sessions(): SessionPool {
    return this.#sessions;
  }

  /**
   * The Modal sandbox currently behind this handle (it changes at rollback).
   * @internal Typed by the SDK: left out of the published types.
   */
  get modalSandbox(): Sandbox {
    return this.#transport.sandbox;
  }

  /** @internal The SDK client of this handle. */
  get modalClient(): ModalClient {
    return this.#origin.client;
  }

  protected async startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess> {
    return this.#sessions.startProcess(req, signal);
  }

  protected async readFileAt(path: string, maxBytes: number): Promise<Uint8Array> {
    const context = this.context('readFile', path);
    let bytes: Uint8Array;
    try {
      bytes = await this.#transport.sandbox.filesystem.readBytes(path);
    } catch (error) {
      throw modalFailure(error, context);
    }
    if (bytes.length > maxBytes)
      throw new OutputLimitError(`${path} is larger than ${maxBytes} bytes`, maxBytes, undefined, context);
    return bytes;
  }

  protected async writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
  ): Promise<void> {
    const sandbox = this.#transport.sandbox;
    const context = this.context('writeFile', path);
    const chunks: Uint8Array[] = [];
    for await (const chunk of data) chunks.push(chunk);
    try {
      await sandbox.filesystem.writeBytes(Buffer.concat(chunks), path);
      if (mode !== undefined) {
        const chmod = await sandbox.exec(['chmod', (mode & 0o7777).toString(8), path], { mode: 'binary' });
        const status = await chmod.wait();
        if (status !== 0) throw new Error(`chmod ${mode.toString(8)} ${path} exited ${status}`);
      }
    } catch (error) {
      throw modalFailure(error, context);
    }
  }

  /** Create a new Modal sandbox from a snapshot image and put it behind this handle. */
  async #restoreFrom(image: Image): Promise<void> {
    const context = this.context('rollback', image.imageId);
    const { client, app, params } = this.#origin;
    let next: Sandbox;
    try {
      next = await client.sandboxes.create(app, image, params);
    } catch (error) {
      throw modalFailure(error, context);
    }
    const previous = this.#transport.sandbox;
    const previousSessions = this.#sessions;
    const nextSessions = this.#newPool();
    await this.swapInstance({
      activate: () => {
        this.#transport.sandbox = next;
        this.#sessions = nextSessions;
        // The old instance's command directories went with it.
        this.#transport.stale.length = 0;
      },
      sessions: { previous: previousSessions, next: nextSessions },
      retire: async () => {
        await previous.terminate().catch(() => {});
        previous.detach();
      },
    });
  }

  protected async closeResources(): Promise<void> {
    const sandbox = this.#transport.sandbox;
    try {
      // First: it kills what still runs on the sessions and ends their shells.
      await this.#sessions.close();
      if (!this.#config.keep)
        await sandbox.terminate().catch((error: unknown) => {
          const failure = modalFailure(error, this.context('close'));
          if (!(failure instanceof NotFoundError)) throw failure;
        });
      if (!this.#config.keep) await (this.checkpoints as SnapshotStore).deleteAll();
    } finally {
      sandbox.detach();
      this.#origin.client.close();
    }
  }
}

/** Checkpoints are filesystem snapshots (Modal images); a rollback creates a sandbox from one. */
class SnapshotStore implements CheckpointStore {
  readonly #owner: ModalSandbox;
  /** The owner's swap to a new sandbox from an image (private to it, so no Modal type is public). */
  readonly #restoreFrom: (image: Image) => Promise<void>;
  readonly #made = new Map<string, { info: CheckpointInfo; image: Image }>();

  constructor(owner: ModalSandbox, restoreFrom: (image: Image) => Promise<void>) {
    this.#owner = owner;
    this.#restoreFrom = restoreFrom;
  }

  #context(operation: string, subject?: string) {
    return { backend: KIND, operation, sandboxId: this.#owner.id, ...(subject ? { subject } : {}) };
  }

  async create(opts: {
    label: string | undefined;
    signal: AbortSignal | undefined;
  }): Promise<CheckpointInfo> {
    if (opts.signal?.aborted) throw new AbortedError('checkpoint aborted', this.#context('checkpoint'));
    let image: Image;
    try {
      image = await this.#owner.modalSandbox.snapshotFilesystem();
    } catch (error) {
      throw modalFailure(error, this.#context('checkpoint'));
    }
    const info: CheckpointInfo = {
      id: image.imageId,
      label: opts.label,
      createdAt: new Date().toISOString(),
      // One image: the sandbox's whole filesystem.
      entries: 1,
      bytesStored: 0,
    };
    this.#made.set(info.id, { info, image });
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
    await this.#restoreFrom(this.#known(id, 'rollback').image);
  }

  async list(): Promise<CheckpointInfo[]> {
    return [...this.#made.values()].map(({ info }) => ({ ...info }));
  }

  async delete(id: string): Promise<void> {
    this.#known(id, 'deleteCheckpoint');
    this.#made.delete(id);
    await this.#owner.modalClient.images.delete(id).catch((error: unknown) => {
      throw modalFailure(error, this.#context('deleteCheckpoint', id));
    });
  }

  async deleteAll(): Promise<void> {
    const ids = [...this.#made.keys()];
    this.#made.clear();
    await Promise.all(ids.map((id) => this.#owner.modalClient.images.delete(id).catch(() => {})));
  }
}

export async function openModalSandbox(ctx: OpenContext<ModalResolvedConfig>): Promise<ModalSandbox> {
  const { id, config, policy, strict, signal } = ctx;
  const context = { backend: KIND, operation: 'open', sandboxId: id };
  const aborted = () => new AbortedError('open aborted', { ...context, cause: signal?.reason });
  if (signal?.aborted) throw aborted();
  const enforcement = modalEnforcement(policy);
  // Refuse what cannot be enforced before anything is created.
  if (strict) assertEnforced(policy, enforcement, context);
  const client = modalClient(config, context);
  let sandbox: Sandbox | undefined;
  let created = false;
  try {
    const app = await client.apps.fromName(config.appName, { createIfMissing: true });
    const params: SandboxCreateParams = {
      tags: { ...(policy.labels ?? {}), [MANAGED_LABEL]: 'true', [ID_LABEL]: id },
      timeoutMs: config.sandboxTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      workdir: config.workdir,
      ...modalPolicyParams(policy),
    };
    if (ctx.idGiven) sandbox = await findSandbox(client, app, id);
    if (!sandbox) {
      // Not aborted midway: Modal would finish a create whose answer we dropped.
      sandbox = await client.sandboxes.create(app, client.images.fromRegistry(config.image), params);
      created = true;
    }
    if (signal?.aborted) throw aborted();
    return new ModalSandbox({ id, sandbox, config, origin: { client, app, params }, enforcement });
  } catch (error) {
    // Nothing is left behind by an open that fails or is aborted halfway (a re-attached sandbox stays).
    if (sandbox && created) await sandbox.terminate().catch(() => {});
    sandbox?.detach();
    client.close();
    if (signal?.aborted && !(error instanceof AbortedError)) throw aborted();
    throw modalFailure(error, context);
  }
}

/** The running Modal sandbox tagged with this agentbox id, if there is one. */
async function findSandbox(client: ModalClient, app: App, id: string): Promise<Sandbox | undefined> {
  for await (const found of client.sandboxes.list({ appId: app.appId, tags: { [ID_LABEL]: id } }))
    return found;
  return undefined;
}
