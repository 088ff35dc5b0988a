/**
 * Checkpoints of a singularity sandbox: its workspace and, when the root is writable through an
 * overlay directory, that overlay's upper layer (what the sandbox changed outside the workspace).
 *
 * The workspace goes through core's TreeCheckpointStore on the host (incremental, content
 * addressed). The upper layer cannot: it holds overlayfs whiteouts (character devices) and
 * opaque-directory xattrs, and overlayfs does not allow changing it under a mounted instance.
 * So a checkpoint keeps a copy of it (`cp -a`, devices and xattrs included), filed under a
 * fingerprint of the live layer (paths, types, modes, owners, sizes, inodes, mtimes, ctimes): a
 * checkpoint of an unchanged layer copies nothing. A rollback whose overlay still matches the
 * checkpoint's fingerprint restores the workspace in place; otherwise it stops the instance,
 * puts the copy back and starts the instance again under the same handle (`restart`).
 */
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CheckpointCorruptError,
  type CheckpointInfo,
  CheckpointNotFoundError,
  type CheckpointVerifyReport,
} from '@agentbox/core';
import type { CheckpointStore, ErrorContext, InterruptedRollback } from '@agentbox/core/backend';

const run = promisify(execFile);

/** A fingerprint of a directory tree's metadata: equal fingerprints, same tree (ctime moves on every change). */
export function treeFingerprint(root: string): string {
  const lines: string[] = [];
  const walk = (dir: string, rel: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' && rel === '') return;
      throw error;
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      const st = lstatSync(path, { bigint: true });
      const r = `${rel}/${name}`;
      lines.push([r, st.mode, st.uid, st.gid, st.size, st.ino, st.rdev, st.mtimeNs, st.ctimeNs].join('\0'));
      if (st.isDirectory()) walk(path, r);
    }
  };
  walk(root, '');
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

/** The record a rollback keeps in the overlay store while it swaps the overlay. */
const ROLLBACK_RECORD = 'rollback-in-progress';

/**
 * Before an instance starts on a sandbox whose last rollback was cut short in the overlay swap:
 * drop the half-made copies and leave an `upper` (empty if it was moved away), so that the
 * instance starts and the recorded rollback runs again (BaseSandbox.resumeInterruptedRollback).
 */
export async function tidyOverlayAfterCrash(overlayDir: string, storeDir: string): Promise<void> {
  if (!(await exists(join(storeDir, ROLLBACK_RECORD)))) return;
  for (const name of await fs.readdir(overlayDir))
    if (/^upper\.(restore|old)-/.test(name))
      await fs.rm(join(overlayDir, name), { recursive: true, force: true });
  await fs.mkdir(join(overlayDir, 'upper'), { recursive: true, mode: 0o755 });
}

export interface SandboxCheckpointsOptions {
  workspace: CheckpointStore;
  /** The overlay directory (`upper/` and `work/` in it), or undefined when the root is not writable through one. */
  overlayDir: string | undefined;
  /** Where the overlay copies live (outside everything the instance shows). */
  storeDir: string;
  /** Stop the instance, run `fn`, start it again under the same handle. */
  restart(fn: () => Promise<void>): Promise<void>;
  /** Run `fn` with every process of the instance stopped. */
  frozen<T>(fn: () => Promise<T>): Promise<T>;
  context: ErrorContext;
}

export class SandboxCheckpoints implements CheckpointStore {
  readonly #o: SandboxCheckpointsOptions;

  constructor(options: SandboxCheckpointsOptions) {
    this.#o = options;
  }

  get #upper(): string {
    return join(this.#o.overlayDir!, 'upper');
  }
  #copy(fingerprint: string): string {
    return join(this.#o.storeDir, 'layers', fingerprint);
  }
  #pointer(id: string): string {
    return join(this.#o.storeDir, 'checkpoints', id);
  }
  #alias(fingerprint: string): string {
    return join(this.#o.storeDir, 'aliases', fingerprint);
  }
  /** Kept while a rollback swaps the overlay, so a crash in between is seen on the next open. */
  get #rollbackRecord(): string {
    return join(this.#o.storeDir, ROLLBACK_RECORD);
  }

  async create(opts: {
    label: string | undefined;
    signal: AbortSignal | undefined;
  }): Promise<CheckpointInfo> {
    return this.#o.frozen(() => this.#create(opts));
  }

  async #create(opts: {
    label: string | undefined;
    signal: AbortSignal | undefined;
  }): Promise<CheckpointInfo> {
    const info = await this.#o.workspace.create(opts);
    if (this.#o.overlayDir === undefined) return info;
    try {
      const live = await this.#canonical(treeFingerprint(this.#upper));
      const copy = this.#copy(live);
      if (!(await exists(copy))) {
        const staging = join(this.#o.storeDir, 'tmp', randomUUID());
        await fs.mkdir(staging, { recursive: true, mode: 0o700 });
        await fs.mkdir(join(this.#o.storeDir, 'layers'), { recursive: true, mode: 0o700 });
        await run('cp', ['-a', '--', this.#upper, join(staging, 'upper')]);
        await fs.rename(staging, copy);
      }
      await writeAtomically(this.#pointer(info.id), live, this.#o.storeDir);
      return info;
    } catch (error) {
      // A checkpoint without its overlay copy would restore half the state: none at all.
      await this.#o.workspace.delete(info.id).catch(() => {});
      throw error;
    }
  }

  async restore(id: string, signal: AbortSignal | undefined): Promise<void> {
    if (this.#o.overlayDir === undefined) return this.#o.frozen(() => this.#o.workspace.restore(id, signal));
    if (!(await this.list()).some((c) => c.id === id))
      throw new CheckpointNotFoundError(`no checkpoint ${JSON.stringify(id)}`, {
        ...this.#o.context,
        subject: id,
      });
    const wanted = await fs.readFile(this.#pointer(id), 'utf8').catch(() => undefined);
    if (wanted === undefined || !(await exists(this.#copy(wanted))))
      throw new CheckpointCorruptError(`checkpoint ${id} has no copy of the overlay`, {
        ...this.#o.context,
        subject: id,
      });
    // The instance goes on running when only the workspace differs.
    const inPlace = await this.#o.frozen(async () => {
      if ((await this.#canonical(treeFingerprint(this.#upper))) !== wanted) return false;
      await this.#o.workspace.restore(id, signal);
      return true;
    });
    if (inPlace) return;
    // Stopping the instance ends every process in it: nothing races the restore then.
    await this.#o.restart(async () => {
      await writeAtomically(this.#rollbackRecord, id, this.#o.storeDir);
      await this.#o.workspace.restore(id, signal);
      const upper = this.#upper;
      const staging = `${upper}.restore-${randomUUID()}`;
      await run('cp', ['-a', '--', join(this.#copy(wanted), 'upper'), staging]);
      const old = `${upper}.old-${randomUUID()}`;
      await fs.rename(upper, old);
      await fs.rename(staging, upper);
      await fs.rm(old, { recursive: true, force: true });
      // overlayfs's work directory belongs to the mount that just ended.
      await fs.rm(join(this.#o.overlayDir!, 'work'), { recursive: true, force: true });
      await fs.mkdir(join(this.#o.overlayDir!, 'work'), { mode: 0o700 });
      // The fresh copy has new inodes and ctimes: remember that it is the checkpoint's layer.
      await fs.mkdir(join(this.#o.storeDir, 'aliases'), { recursive: true, mode: 0o700 });
      await writeAtomically(this.#alias(treeFingerprint(upper)), wanted, this.#o.storeDir);
      await fs.rm(this.#rollbackRecord, { force: true });
    });
  }

  /** The workspace store's scrub, and for each checkpoint whole there, its overlay copy present. */
  async verify(signal: AbortSignal | undefined): Promise<CheckpointVerifyReport> {
    const report = await this.#o.workspace.verify!(signal);
    if (this.#o.overlayDir !== undefined) {
      const intact: string[] = [];
      for (const id of report.intact) {
        const layer = await fs.readFile(this.#pointer(id), 'utf8').catch(() => undefined);
        if (layer !== undefined && (await exists(this.#copy(layer)))) intact.push(id);
        else report.damagedManifests.push({ id, reason: 'its copy of the overlay is missing' });
      }
      report.intact = intact;
      report.ok = report.damagedManifests.length === 0 && report.damagedObjects.length === 0;
    }
    report.interruptedRollback ??= await this.interruptedRollback(signal);
    return report;
  }

  /** A rollback cut short: the workspace store's record, or this one's (the overlay swap). */
  async interruptedRollback(signal: AbortSignal | undefined): Promise<InterruptedRollback | undefined> {
    const workspace = await this.#o.workspace.interruptedRollback?.(signal);
    if (workspace) return workspace;
    const id = await fs
      .readFile(this.#rollbackRecord, 'utf8')
      .catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? null : ''));
    if (id === null) return undefined;
    return { checkpointId: id || undefined };
  }

  list(): Promise<CheckpointInfo[]> {
    return this.#o.workspace.list();
  }

  async delete(id: string): Promise<void> {
    await this.#o.workspace.delete(id);
    if (this.#o.overlayDir === undefined) return;
    await fs.rm(this.#pointer(id), { force: true });
    // Layers no checkpoint points at any more go (aliases of them too).
    const dir = join(this.#o.storeDir, 'checkpoints');
    const kept = new Set(
      await Promise.all(
        (await fs.readdir(dir).catch(() => [])).map((n) => fs.readFile(join(dir, n), 'utf8')),
      ),
    );
    for (const layer of await fs.readdir(join(this.#o.storeDir, 'layers')).catch(() => []))
      if (!kept.has(layer)) await fs.rm(this.#copy(layer), { recursive: true, force: true });
    const aliases = join(this.#o.storeDir, 'aliases');
    for (const alias of await fs.readdir(aliases).catch(() => [])) {
      const target = await fs.readFile(join(aliases, alias), 'utf8').catch(() => '');
      if (!kept.has(target)) await fs.rm(join(aliases, alias), { force: true });
    }
  }

  /** The layer a live fingerprint stands for (itself, or the checkpoint layer it was restored from). */
  async #canonical(fingerprint: string): Promise<string> {
    return (await fs.readFile(this.#alias(fingerprint), 'utf8').catch(() => undefined)) ?? fingerprint;
  }
}

function exists(path: string): Promise<boolean> {
  return fs.stat(path).then(
    () => true,
    () => false,
  );
}

async function writeAtomically(path: string, text: string, storeDir: string): Promise<void> {
  await fs.mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const tmp = join(storeDir, 'tmp', randomUUID());
  await fs.mkdir(join(storeDir, 'tmp'), { recursive: true, mode: 0o700 });
  await fs.writeFile(tmp, text, { mode: 0o600 });
  await fs.rename(tmp, path);
}
