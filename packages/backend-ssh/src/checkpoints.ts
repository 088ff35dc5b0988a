/**
 * The `copy` checkpoint store (the default): kept on the SSH host next to the workspace, each
 * checkpoint a full `cp -a` copy of it — real copies (or copy-on-write reflinks where the
 * filesystem has them), never hard links, so nothing done to the live tree can reach a
 * checkpoint. A checkpoint is made under a temporary name and renamed into place, so a crash
 * halfway never leaves a damaged one behind. Rollback empties the workspace and copies the
 * checkpoint back into the same directory (same path and inode), so it can be repeated.
 *
 * Its cost follows the size of the tree, in a handful of processes whatever the file count.
 * The `incremental` choice (core's ExecCheckpointStore) follows the size of the change instead,
 * at a few processes per changed file.
 */
import { randomBytes } from 'node:crypto';
import {
  AgentboxError,
  type CheckpointInfo,
  CheckpointNotFoundError,
  type CheckpointStore,
  type ErrorContext,
} from '@agentbox/core';
import type { SshConnection } from './connection.js';
import { quoteAll } from './shell.js';

const ID = /^cp-[a-z0-9]+-[0-9a-f]{8}$/;

/** Make every directory of a tree writable and searchable, so that a read-only one can be removed. */
const UNLOCK = 'chmod -R u+rwX';

const CREATE = `set -e
store=$1 ws=$2 id=$3 created=$4 label=$5
tmp="$store/.new-$id"
mkdir -p "$store"
for old in "$store"/.new-*; do [ -e "$old" ] || continue; ${UNLOCK} "$old" 2>/dev/null || true; rm -rf "$old"; done
mkdir "$tmp"
cp -a "$ws" "$tmp/tree"
entries=$(find "$tmp/tree" | wc -l)
bytes=$(du -sb "$tmp/tree" 2>/dev/null | cut -f1) || bytes=
[ -n "$bytes" ] || bytes=$(( $(du -sk "$tmp/tree" | cut -f1) * 1024 ))
printf '{"id":"%s","label":%s,"createdAt":"%s","entries":%d,"bytesStored":%d}\\n' "$id" "$label" "$created" $((entries - 1)) "$bytes" > "$tmp/meta.json"
mv "$tmp" "$store/$id"
cat "$store/$id/meta.json"`;

const RESTORE = `set -e
store=$1 ws=$2 id=$3
[ -f "$store/$id/meta.json" ] || { echo "no checkpoint $id" >&2; exit 3; }
${UNLOCK} "$ws" 2>/dev/null || true
find "$ws" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
cp -a "$store/$id/tree/." "$ws/"`;

const LIST = `store=$1
for f in "$store"/cp-*/meta.json; do [ -f "$f" ] && cat "$f"; done; true`;

const DELETE = `store=$1 id=$2
[ -f "$store/$id/meta.json" ] || { echo "no checkpoint $id" >&2; exit 3; }
mv "$store/$id" "$store/.del-$id"
${UNLOCK} "$store/.del-$id" 2>/dev/null || true
rm -rf "$store/.del-$id"`;

export class RemoteCopyCheckpointStore implements CheckpointStore {
  readonly #conn: SshConnection;
  readonly #store: string;
  readonly #workspace: string;
  readonly #context: ErrorContext;
  /** One checkpoint operation at a time per sandbox. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: { conn: SshConnection; storeDir: string; workspace: string; context: ErrorContext }) {
    this.#conn = opts.conn;
    this.#store = opts.storeDir;
    this.#workspace = opts.workspace;
    this.#context = opts.context;
  }

  create(opts: { label: string | undefined; signal: AbortSignal | undefined }): Promise<CheckpointInfo> {
    return this.#serial(async () => {
      const id = `cp-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
      const label = opts.label === undefined ? 'null' : JSON.stringify(opts.label);
      const args = [this.#store, this.#workspace, id, new Date().toISOString(), label];
      const out = await this.#conn.check(script(CREATE, args), {
        signal: opts.signal,
        context: this.#ctx('checkpoint'),
      });
      return parseInfo(out.toString('utf8').trim());
    });
  }

  restore(id: string, signal: AbortSignal | undefined): Promise<void> {
    return this.#serial(async () => {
      this.#known(id, 'rollback');
      const result = await this.#conn.run(script(RESTORE, [this.#store, this.#workspace, id]), {
        signal,
        context: this.#ctx('rollback'),
      });
      if (result.code === 3) throw this.#notFound(id, 'rollback');
      if (result.code !== 0)
        throw new AgentboxError(
          `rollback to ${id} failed: ${result.stderr.toString('utf8').trim()}`,
          this.#ctx('rollback'),
        );
    });
  }

  list(): Promise<CheckpointInfo[]> {
    return this.#serial(async () => {
      const out = await this.#conn.check(script(LIST, [this.#store]), {
        context: this.#ctx('listCheckpoints'),
      });
      return out
        .toString('utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map(parseInfo)
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    });
  }

  delete(id: string): Promise<void> {
    return this.#serial(async () => {
      this.#known(id, 'deleteCheckpoint');
      const result = await this.#conn.run(script(DELETE, [this.#store, id]), {
        context: this.#ctx('deleteCheckpoint'),
      });
      if (result.code === 3) throw this.#notFound(id, 'deleteCheckpoint');
      if (result.code !== 0)
        throw new AgentboxError(
          `deleting checkpoint ${id} failed: ${result.stderr.toString('utf8').trim()}`,
          this.#ctx('deleteCheckpoint'),
        );
    });
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #ctx(operation: string): ErrorContext {
    return { ...this.#context, operation };
  }

  #known(id: string, operation: string): void {
    if (!ID.test(id)) throw this.#notFound(id, operation);
  }

  #notFound(id: string, operation: string): CheckpointNotFoundError {
    return new CheckpointNotFoundError(`no checkpoint ${JSON.stringify(id)}`, {
      ...this.#ctx(operation),
      subject: id,
    });
  }
}

/** A script run by `sh -c` with its arguments, as one command line for the login shell. */
function script(body: string, args: readonly string[]): string {
  return `sh -c ${quoteAll([body, 'sh', ...args])}`;
}

function parseInfo(line: string): CheckpointInfo {
  const raw = JSON.parse(line) as {
    id: string;
    label: string | null;
    createdAt: string;
    entries: number;
    bytesStored: number;
  };
  return {
    id: raw.id,
    label: raw.label ?? undefined,
    createdAt: raw.createdAt,
    entries: raw.entries,
    bytesStored: raw.bytesStored,
  };
}
