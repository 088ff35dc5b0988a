/**
 * One Daytona sandbox per agentbox sandbox. Commands run through session exec (see exec.ts),
 * files through the SDK's file API, checkpoints are Daytona snapshots, and a rollback starts a
 * new Daytona sandbox from the snapshot and swaps it in under the same handle.
 */
import { Readable } from 'node:stream';
import {
  AbortedError,
  type AgentboxError,
  type Capabilities,
  type CheckpointInfo,
  CheckpointNotFoundError,
  type EnforcementReport,
  IsADirectoryError,
  NotFoundError,
  OutputLimitError,
  type ParsedPolicy,
  SandboxUnavailableError,
} from '@agentbox/core';
import {
  assertEnforced,
  BaseSandbox,
  type CheckpointStore,
  type ErrorContext,
  type OpenContext,
  type RawProcess,
  type StartRequest,
  watchSource,
} from '@agentbox/core/backend';
import type { CreateSandboxFromSnapshotParams, Daytona, Sandbox } from '@daytonaio/sdk';
import { connectDaytona, daytonaFailure } from './client.js';
import type { DaytonaResolvedConfig } from './config.js';
import { daytonaEnforcement, daytonaResources } from './enforcement.js';
import { DaytonaSessions, type ExecTransport, startDaytonaProcess } from './exec.js';
import { ID_LABEL, MANAGED_LABEL } from './labels.js';

export const KIND = 'daytona';

const CAPABILITIES: Capabilities = {
  isolation: 'container',
  checkpoints: true,
  spawn: false,
  stdin: true,
  kill: true,
  nonRootUser: true,
  networkPolicy: true,
  reattach: true,
  unsupported: {
    spawn:
      "Daytona's session exec returns a command's output when it ends (its live log stream decodes bytes as text), so output is not streamed while the command runs",
  },
};

interface Instance {
  sandbox: Sandbox;
  sessions: DaytonaSessions;
}

export class DaytonaSandbox extends BaseSandbox {
  readonly #daytona: Daytona;
  readonly #config: DaytonaResolvedConfig;
  readonly #createParams: CreateSandboxFromSnapshotParams;
  #instance: Instance;
  readonly #transport: ExecTransport;
  protected readonly checkpoints: CheckpointStore;

  /** @internal Made by the backend's open; its parameter types are the SDK's. */
  constructor(init: {
    id: string;
    daytona: Daytona;
    sandbox: Sandbox;
    config: DaytonaResolvedConfig;
    createParams: CreateSandboxFromSnapshotParams;
    workdir: string;
    enforcement: EnforcementReport;
    capabilities: Capabilities;
  }) {
    super({
      kind: KIND,
      id: init.id,
      workdir: init.workdir,
      capabilities: init.capabilities,
      enforcement: init.enforcement,
      baseEnv: init.config.env,
    });
    this.#daytona = init.daytona;
    this.#config = init.config;
    this.#createParams = init.createParams;
    this.#instance = { sandbox: init.sandbox, sessions: new DaytonaSessions(init.sandbox) };
    this.#transport = { sessions: this.#instance.sessions, stale: [], context: this.context('exec') };
    this.checkpoints = new SnapshotStore(this);
  }

  /**
   * The Daytona sandbox currently behind this handle (it changes at rollback).
   * @internal Typed by the SDK, whose own types need @types/ws: left out of the published types.
   */
  get daytonaSandbox(): Sandbox {
    return this.#instance.sandbox;
  }

  /** @internal The SDK client (see daytonaSandbox). */
  get daytona(): Daytona {
    return this.#daytona;
  }

  protected async startProcess(req: StartRequest): Promise<RawProcess> {
    return startDaytonaProcess(this.#transport, req);
  }

  protected async readFileAt(path: string, maxBytes: number): Promise<Uint8Array> {
    const { sandbox } = this.#instance;
    const context = this.context('readFile', path);
    try {
      const info = await sandbox.fs.getFileDetails(path);
      if (info.isDir) throw new IsADirectoryError(`${path} is a directory`, context);
      if (info.size > maxBytes)
        throw new OutputLimitError(`${path} is larger than ${maxBytes} bytes`, maxBytes, info.size, context);
      return new Uint8Array(await sandbox.fs.downloadFile(path));
    } catch (error) {
      throw await this.#fileFailure(error, context);
    }
  }

  /** A file operation's failure; a "not found" is checked against the sandbox itself, which may be the one gone. */
  async #fileFailure(error: unknown, context: ErrorContext): Promise<AgentboxError> {
    const failure = daytonaFailure(error, context);
    if (!(failure instanceof NotFoundError)) return failure;
    try {
      await this.#instance.sandbox.refreshData();
    } catch (gone) {
      const why = daytonaFailure(gone, context);
      if (why instanceof NotFoundError || why instanceof SandboxUnavailableError)
        return new SandboxUnavailableError(`Daytona no longer knows this sandbox: ${why.message}`, {
          ...context,
          cause: gone,
        });
    }
    return failure;
  }

  protected async writeFileAt(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
  ): Promise<void> {
    const { sandbox } = this.#instance;
    const context = this.context('writeFile', path);
    // The SDK wraps a failing stream's error in its own: the data's error is the one to throw.
    const source = watchSource(data);
    try {
      await sandbox.fs.uploadFileStream(Readable.from(source.data), path);
      if (source.failed) throw source.error;
      if (mode !== undefined)
        await sandbox.fs.setFilePermissions(path, { mode: mode.toString(8).padStart(3, '0') });
    } catch (error) {
      throw daytonaFailure(source.failed ? source.error : error, context);
    }
  }

  /** Start a new Daytona sandbox from a snapshot and put it behind this handle. */
  async restoreFrom(snapshotName: string): Promise<void> {
    const context = this.context('rollback', snapshotName);
    let next: Sandbox;
    try {
      next = await this.#daytona.create({ ...this.#createParams, snapshot: snapshotName });
    } catch (error) {
      throw daytonaFailure(error, context);
    }
    const previous = this.#instance;
    await this.swapInstance({
      activate: () => {
        this.#instance = { sandbox: next, sessions: new DaytonaSessions(next) };
        this.#transport.sessions = this.#instance.sessions;
        // The old instance's command directories went with it.
        this.#transport.stale.length = 0;
      },
      retire: () => previous.sandbox.delete().catch(() => {}),
    });
  }

  protected async closeResources(): Promise<void> {
    if (this.#config.keep) return;
    await this.#instance.sandbox.delete().catch((error: unknown) => {
      const failure = daytonaFailure(error, this.context('close'));
      if (!(failure instanceof NotFoundError)) throw failure;
    });
    await (this.checkpoints as SnapshotStore).deleteAll();
  }
}

/** Checkpoints are Daytona snapshots named after the sandbox; a rollback starts a sandbox from one. */
class SnapshotStore implements CheckpointStore {
  readonly #owner: DaytonaSandbox;
  readonly #made = new Map<string, CheckpointInfo>();
  #sequence = 0;

  constructor(owner: DaytonaSandbox) {
    this.#owner = owner;
  }

  async create(opts: {
    label: string | undefined;
    signal: AbortSignal | undefined;
  }): Promise<CheckpointInfo> {
    const name = `agentbox-${this.#owner.id}-${Date.now().toString(36)}-${(this.#sequence++).toString(36)}`;
    try {
      await this.#owner.daytonaSandbox.createSnapshot(name);
    } catch (error) {
      throw daytonaFailure(error, { backend: KIND, operation: 'checkpoint', sandboxId: this.#owner.id });
    }
    const info: CheckpointInfo = {
      id: name,
      label: opts.label,
      createdAt: new Date().toISOString(),
      // One Daytona snapshot: the sandbox's whole filesystem as one image.
      entries: 1,
      bytesStored: 0,
    };
    this.#made.set(name, info);
    return { ...info };
  }

  async restore(id: string): Promise<void> {
    if (!this.#made.has(id))
      throw new CheckpointNotFoundError(`no checkpoint ${id} in sandbox ${this.#owner.id}`, {
        backend: KIND,
        operation: 'rollback',
        sandboxId: this.#owner.id,
        subject: id,
      });
    await this.#owner.restoreFrom(id);
  }

  async list(): Promise<CheckpointInfo[]> {
    return [...this.#made.values()].map((info) => ({ ...info }));
  }

  async delete(id: string): Promise<void> {
    if (!this.#made.has(id))
      throw new CheckpointNotFoundError(`no checkpoint ${id} in sandbox ${this.#owner.id}`, {
        backend: KIND,
        operation: 'deleteCheckpoint',
        sandboxId: this.#owner.id,
        subject: id,
      });
    this.#made.delete(id);
    await this.#owner.daytona.snapshot.delete(id).catch((error: unknown) => {
      throw daytonaFailure(error, {
        backend: KIND,
        operation: 'deleteCheckpoint',
        sandboxId: this.#owner.id,
      });
    });
  }

  async deleteAll(): Promise<void> {
    const names = [...this.#made.keys()];
    this.#made.clear();
    await Promise.all(names.map((name) => this.#owner.daytona.snapshot.delete(name).catch(() => {})));
  }
}

export async function openDaytonaSandbox(ctx: OpenContext<DaytonaResolvedConfig>): Promise<DaytonaSandbox> {
  const { id, config, policy, strict, signal } = ctx;
  const context = { backend: KIND, operation: 'open', sandboxId: id };
  const aborted = () => new AbortedError('open aborted', { ...context, cause: signal?.reason });
  if (signal?.aborted) throw aborted();
  // Refuse what cannot be enforced before anything is created.
  if (strict) assertEnforced(policy, daytonaEnforcement(policy, undefined), context);
  const daytona = connectDaytona(config, context);
  const createParams = createParamsFor(id, config, policy);
  let sandbox: Sandbox | undefined;
  let created = false;
  try {
    if (ctx.idGiven) sandbox = await findSandbox(daytona, id);
    if (sandbox) {
      if (sandbox.state !== 'started') await sandbox.start();
    } else {
      sandbox = await daytona.create(createParams);
      created = true;
    }
    if (signal?.aborted) throw aborted();
    const enforcement = daytonaEnforcement(policy, sandbox);
    if (strict) assertEnforced(policy, enforcement, context);
    const workdir = config.workdir ?? (await sandbox.getWorkDir()) ?? '/';
    if (signal?.aborted) throw aborted();
    return new DaytonaSandbox({
      id,
      daytona,
      sandbox,
      config,
      createParams,
      workdir,
      enforcement,
      capabilities: { ...CAPABILITIES, nonRootUser: sandbox.user !== 'root' && sandbox.user !== '0' },
    });
  } catch (error) {
    // Nothing is left behind by an open that fails or is aborted halfway (a re-attached sandbox stays).
    if (sandbox && created) await sandbox.delete().catch(() => {});
    throw daytonaFailure(error, context);
  }
}

function createParamsFor(
  id: string,
  config: DaytonaResolvedConfig,
  policy: ParsedPolicy,
): CreateSandboxFromSnapshotParams {
  const resources = daytonaResources(policy);
  return {
    ...(config.snapshot ? { snapshot: config.snapshot } : {}),
    labels: { ...(policy.labels ?? {}), [MANAGED_LABEL]: 'true', [ID_LABEL]: id },
    ...(Object.keys(resources).length > 0 ? { resources } : {}),
    autoStopInterval: config.autoStopMinutes,
    autoArchiveInterval: config.autoArchiveMinutes,
    autoDeleteInterval: config.autoDeleteMinutes,
    ...(policy.network?.mode === 'none' ? { networkBlockAll: true } : {}),
  };
}

async function findSandbox(daytona: Daytona, id: string): Promise<Sandbox | undefined> {
  for await (const sandbox of daytona.list({ labels: { [ID_LABEL]: id } })) return sandbox;
  return undefined;
}
