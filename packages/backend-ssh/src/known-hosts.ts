/**
 * Host key verification: OpenSSH known_hosts files (plain, wildcard, negated and hashed `|1|`
 * host patterns, `[host]:port` for other ports, `@revoked` markers) and pinned SHA-256
 * fingerprints as `ssh-keygen -lf` prints them. Nothing here ever accepts a key on its own: an
 * unknown key is only recorded when the caller asked for `accept-new`.
 */
import { createHash, createHmac } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromErrno } from '@agentbox/core/backend';

export interface KnownHostEntry {
  marker: 'cert-authority' | 'revoked' | undefined;
  /** The host field as written: comma-separated patterns, or one `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  /** The public key blob, base64 as in the file. */
  key: string;
}

/** `host` for port 22, `[host]:port` otherwise: the name known_hosts files use. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@cert-authority' || fields[0] === '@revoked') {
      marker = fields[0] === '@revoked' ? 'revoked' : 'cert-authority';
      fields.shift();
    } else if (fields[0]?.startsWith('@')) {
      continue; // an unknown marker: skip the line as OpenSSH does
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key) continue;
    entries.push({ marker, hosts, keyType, key });
  }
  return entries;
}

/** OpenSSH `match_pattern`: `*` and `?` wildcards, case-insensitive for host names. */
function globMatch(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(name);
}

function hashedMatch(field: string, name: string): boolean {
  const parts = field.split('|');
  // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const expected = Buffer.from(parts[3]!, 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return actual.length === expected.length && actual.equals(expected);
}

/** Whether an entry's host field names `name` (already in `[host]:port` form where needed). */
export function hostFieldMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) return hashedMatch(hosts, name);
  let matched = false;
  for (const pattern of hosts.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatch(pattern.slice(1), name)) return false;
    } else if (globMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type named inside a public key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function normalizeFingerprint(fingerprint: string): string {
  const body = fingerprint.startsWith('SHA256:') ? fingerprint.slice(7) : fingerprint;
  return `SHA256:${body.replace(/=+$/, '')}`;
}

export type HostKeyVerdict =
  | { ok: true; learned: boolean }
  | { ok: false; reason: 'unknown' | 'changed' | 'revoked' | 'fingerprint-mismatch'; detail: string };

export interface HostKeyCheck {
  host: string;
  port: number;
  /** Pinned fingerprints: when given, the only keys accepted (known_hosts is not consulted). */
  fingerprints: readonly string[] | undefined;
  knownHostsFile: string;
  policy: 'strict' | 'accept-new';
}

/** The known_hosts entries (non-CA) for one host, read fresh from the file. */
export async function knownKeysFor(file: string, host: string, port: number): Promise<KnownHostEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw fromErrno(code, `cannot read the known_hosts file ${file}: ${(error as Error).message}`, {
      backend: 'ssh',
      operation: 'connect',
      subject: file,
      cause: error,
    });
  }
  const name = knownHostsName(host, port);
  return parseKnownHosts(text).filter(
    (e) => e.marker !== 'cert-authority' && hostFieldMatches(e.hosts, name),
  );
}

/** Decide on the key a server presented. With `accept-new`, an unknown key is appended to the file. */
export async function verifyHostKey(check: HostKeyCheck, blob: Buffer): Promise<HostKeyVerdict> {
  const fingerprint = fingerprintSha256(blob);
  const name = knownHostsName(check.host, check.port);
  if (check.fingerprints !== undefined) {
    const pinned = check.fingerprints.map(normalizeFingerprint);
    if (pinned.includes(fingerprint)) return { ok: true, learned: false };
    return {
      ok: false,
      reason: 'fingerprint-mismatch',
      detail: `host ${name} presented ${keyTypeOf(blob)} key ${fingerprint}, which is not the pinned ${pinned.join(' or ')}`,
    };
  }
  const entries = await knownKeysFor(check.knownHostsFile, check.host, check.port);
  const key = blob.toString('base64');
  if (entries.some((e) => e.marker === 'revoked' && e.key === key)) {
    return {
      ok: false,
      reason: 'revoked',
      detail: `host ${name} presented key ${fingerprint}, which is marked @revoked in ${check.knownHostsFile}`,
    };
  }
  const known = entries.filter((e) => e.marker === undefined);
  if (known.some((e) => e.key === key)) return { ok: true, learned: false };
  if (known.length > 0) {
    return {
      ok: false,
      reason: 'changed',
      detail: `the host key of ${name} has changed: it presented ${keyTypeOf(blob)} key ${fingerprint}, which does not match the ${known.length} key(s) recorded in ${check.knownHostsFile}. This may be an attack; remove the old entry only if the change is expected`,
    };
  }
  if (check.policy !== 'accept-new') {
    return {
      ok: false,
      reason: 'unknown',
      detail: `host ${name} is not in ${check.knownHostsFile} (it presented ${keyTypeOf(blob)} key ${fingerprint}); add it, pin its fingerprint, or pass hostKeyPolicy: 'accept-new'`,
    };
  }
  await appendKnownHost(check.knownHostsFile, name, keyTypeOf(blob), key);
  return { ok: true, learned: true };
}

async function appendKnownHost(file: string, name: string, keyType: string, key: string): Promise<void> {
  await fs.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const current = await fs.readFile(file, 'utf8');
    if (current.length > 0 && !current.endsWith('\n')) prefix = '\n';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await fs.appendFile(file, `${prefix}${name} ${keyType} ${key}\n`, { mode: 0o600 });
}

/** Host key algorithms to offer first: those of the keys already known, so the server picks one of them. */
export function preferredHostKeyAlgorithms(entries: readonly KnownHostEntry[]): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    if (entry.marker !== undefined) continue;
    const algos = entry.keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [entry.keyType];
    for (const algo of algos)
      if (SUPPORTED_HOST_KEY_ALGORITHMS.includes(algo) && !out.includes(algo)) out.push(algo);
  }
  return out;
}

const SUPPORTED_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];
