/**
 * What the CLI remembers about a kept sandbox between commands, so that `--id` alone finds it:
 * its backend, and how its config and policy were given. One small JSON file per sandbox under
 * the user's state directory ($XDG_STATE_HOME/agentbox/sandboxes, by default
 * ~/.local/state/agentbox/sandboxes), readable by the user alone. Secrets are never written: a
 * `--config-file` is remembered by its path, and an inline config without its secret fields.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError } from '@agentbox/core';

type Env = Readonly<Record<string, string | undefined>>;

/** A JSON value given on the command line, as far as it may be written down. */
export interface RememberedJson {
  value: Record<string, unknown>;
  /** Dotted paths of the secret fields left out (they must be given again). */
  omitted: string[];
}

export interface SandboxRecord {
  version: 1;
  id: string;
  backend: string;
  /** `file`: re-read at each use (so a key named in it is read where it lives); `json`: an inline config. */
  config?: { file: string } | { json: RememberedJson };
  policy?: RememberedJson;
  savedAt: string;
}

/** Where the records live. */
export function recordsDir(env: Env): string {
  const state = env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : undefined;
  return join(state ?? join(env.HOME || homedir(), '.local', 'state'), 'agentbox', 'sandboxes');
}

// Ids are checked (SandboxIdSchema) before they reach a path.
const recordPath = (env: Env, id: string) => join(recordsDir(env), `${id}.json`);

export async function readRecord(env: Env, id: string): Promise<SandboxRecord | undefined> {
  let text: string;
  try {
    text = await readFile(recordPath(env, id), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const record = JSON.parse(text) as SandboxRecord;
    if (record.version === 1 && record.id === id && typeof record.backend === 'string') return record;
  } catch {
    // A damaged record is treated as none: the next `open` writes a good one.
  }
  return undefined;
}

/** Write (or replace) a record atomically, mode 0600 in a 0700 directory. */
export async function writeRecord(env: Env, record: SandboxRecord): Promise<void> {
  const dir = recordsDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${record.id}.${randomUUID()}.tmp`);
  await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, recordPath(env, record.id));
}

export async function removeRecord(env: Env, id: string): Promise<void> {
  await rm(recordPath(env, id), { force: true });
}

/** Field names whose values are credentials: they are left out of a record. */
const SECRET_FIELD = /^(key|privateKey|env)$|pass(word|phrase)|secret|token|api_?key/i;

/** `value` without its secret fields, and the dotted paths of what was left out. */
export function withoutSecrets(value: Record<string, unknown>): RememberedJson {
  const omitted: string[] = [];
  const strip = (node: unknown, path: string): unknown => {
    if (Array.isArray(node)) return node.map((item, i) => strip(item, `${path}.${i}`));
    if (typeof node !== 'object' || node === null) return node;
    const out: Record<string, unknown> = {};
    for (const [name, child] of Object.entries(node)) {
      const at = path ? `${path}.${name}` : name;
      if (SECRET_FIELD.test(name)) omitted.push(at);
      else out[name] = strip(child, at);
    }
    return out;
  };
  return { value: strip(value, '') as Record<string, unknown>, omitted };
}

/** How the config was given, as a record keeps it. */
export function rememberConfig(flags: {
  config?: string | undefined;
  'config-file'?: string | undefined;
}): SandboxRecord['config'] {
  if (flags['config-file'] !== undefined) return { file: resolve(flags['config-file']) };
  if (flags.config !== undefined)
    return { json: withoutSecrets(JSON.parse(flags.config) as Record<string, unknown>) };
  return undefined;
}

/** A remembered JSON value, refused when secrets were left out of it (they must be given again). */
export function recalled(record: SandboxRecord, what: 'config' | 'policy', json: RememberedJson) {
  if (json.omitted.length > 0)
    throw new InvalidArgumentError(
      `sandbox "${record.id}" (${record.backend}) was opened with secrets in --${what} ` +
        `(${json.omitted.join(', ')}), which agentbox does not write down: give --${what} again` +
        (what === 'config' ? ', or open it with --config-file, which is remembered by its path' : ''),
      {
        operation: 'open',
        sandboxId: record.id,
        issues: json.omitted.map((path) => `${what}.${path}: not stored`),
      },
    );
  return json.value;
}
