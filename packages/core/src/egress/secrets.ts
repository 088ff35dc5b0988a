/**
 * Secrets that never enter the sandbox: at open the library reads each real value, makes a
 * placeholder that is unique to this sandbox and unguessable, and gives the sandbox only the
 * placeholder. The relay (secret-filter.ts) swaps the real value in for the secret's hosts.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type ErrorContext, InvalidArgumentError, PolicyNotEnforceableError } from '../errors.js';
import type { ControlStatus, SecretPolicy } from '../policy.js';
import type { EgressEntry } from './allowlist.js';
import { SandboxCa } from './x509.js';

/** One secret as the relay uses it. The value stays in this process. */
export interface SecretBinding {
  /** The sandbox's variable that holds the placeholder (also what logs name the secret by). */
  env: string;
  placeholder: string;
  value: Buffer;
  /** `host:port` of allowlist entries (lower case) the value may be sent to. */
  hosts: ReadonlySet<string>;
  inRequestLine: boolean;
}

const hostKey = (host: string | { host: string }) =>
  (typeof host === 'string' ? host : host.host).toLowerCase();

/** A fresh placeholder: 192 random bits, so nothing outside this sandbox can produce it. */
export function newPlaceholder(): string {
  return `agentbox-secret-${randomBytes(24).toString('hex')}`;
}

/**
 * Read each secret's value and give it a placeholder. Throws PolicyNotEnforceableError for a
 * host the allowlist does not relay or one that asks for TLS termination where the backend has
 * none, and InvalidArgumentError for a value that cannot be read or cannot go in an HTTP header.
 */
export async function loadSecrets(
  secrets: readonly SecretPolicy[],
  entries: readonly EgressEntry[],
  backend: string,
  context: ErrorContext,
  opts: { terminatesTls?: boolean } = {},
): Promise<SecretBinding[]> {
  const relayed = new Set(entries.map((e) => `${e.host}:${e.port}`));
  const refused: string[] = [];
  const envs = new Set<string>();
  for (const secret of secrets) {
    if (envs.has(secret.env))
      throw new InvalidArgumentError(`policy.secrets: ${secret.env} is declared twice`, context);
    envs.add(secret.env);
    for (const host of secret.hosts) {
      if (typeof host !== 'string' && !opts.terminatesTls)
        refused.push(
          `${secret.env} → ${host.host}: the ${backend} backend has no TLS termination; only plain HTTP destinations get the real value`,
        );
      else if (!relayed.has(hostKey(host)))
        refused.push(`${secret.env} → ${host}: not in the network allowlist, so the relay never sees it`);
    }
  }
  if (refused.length > 0)
    throw new PolicyNotEnforceableError(
      `the ${backend} backend cannot enforce the secrets: ${refused.join('; ')}`,
      { secrets: refused.join('; ') },
      context,
    );
  const bindings: SecretBinding[] = [];
  for (const secret of secrets) {
    const value = await readValue(secret, context);
    bindings.push({
      env: secret.env,
      placeholder: newPlaceholder(),
      value,
      hosts: new Set(secret.hosts.map(hostKey)),
      inRequestLine: secret.inRequestLine,
    });
  }
  return bindings;
}

async function readValue(secret: SecretPolicy, context: ErrorContext): Promise<Buffer> {
  let value: Buffer;
  if ('file' in secret.from) {
    const file = secret.from.file;
    value = await readFile(file).catch((error: NodeJS.ErrnoException) => {
      throw new InvalidArgumentError(
        `policy.secrets: cannot read ${secret.env} from ${file} (${error.code})`,
        {
          ...context,
          cause: error,
        },
      );
    });
    // Files usually end with a newline that is not part of the credential.
    if (value.at(-1) === 10) value = value.subarray(0, value.at(-2) === 13 ? -2 : -1);
  } else {
    const name = secret.from.env;
    const text = process.env[name];
    if (text === undefined)
      throw new InvalidArgumentError(
        `policy.secrets: ${secret.env} comes from the environment variable ${name}, which this process does not have`,
        context,
      );
    value = Buffer.from(text, 'utf8');
  }
  if (value.length === 0) throw new InvalidArgumentError(`policy.secrets: ${secret.env} is empty`, context);
  // A line break would let the value end the header it is put in.
  if (value.includes(10) || value.includes(13) || value.includes(0))
    throw new InvalidArgumentError(
      `policy.secrets: ${secret.env} holds a line break or NUL byte, which an HTTP header cannot carry`,
      context,
    );
  return value;
}

/** The sandbox's side: each secret's variable holding its placeholder. */
export function secretEnv(bindings: readonly SecretBinding[]): Record<string, string> {
  return Object.fromEntries(bindings.map((b) => [b.env, b.placeholder]));
}

/** Replace every known secret value in `text` by `[secret NAME]` (in any letter case: DNS names come lower-cased). */
export function redactSecrets(text: string, bindings: readonly SecretBinding[]): string {
  let out = text;
  for (const b of bindings) {
    const value = b.value.toString('utf8').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(value, 'gi'), `[secret ${b.env}]`);
  }
  return out;
}

/** The `secrets` control for a backend whose relay sees the sandbox's connections (or why not). */
export function secretsStatus(
  secrets: readonly SecretPolicy[] | undefined,
  relay: 'allowlist' | string,
  opts: { terminatesTls?: boolean } = {},
): ControlStatus {
  if (!secrets?.length) return { status: 'not-requested', detail: 'none requested' };
  if (relay !== 'allowlist') return { status: 'not-supported', detail: relay };
  const plain = [
    ...new Set(secrets.flatMap((s) => s.hosts.filter((h) => typeof h === 'string').map(hostKey))),
  ];
  const tls = [...new Set(secrets.flatMap((s) => s.hosts.filter((h) => typeof h !== 'string').map(hostKey)))];
  if (tls.length > 0 && !opts.terminatesTls)
    return {
      status: 'not-supported',
      detail: `TLS termination (${tls.join(', ')}) is not available on this backend: only plain HTTP destinations can get the real value`,
    };
  const where = [
    ...(plain.length ? [`plain HTTP request headers to ${plain.join(', ')}`] : []),
    ...(tls.length
      ? [
          `HTTPS request headers to ${tls.join(', ')} (decrypted with a certificate of a CA made for this sandbox, which the sandbox is told to trust; the real server's certificate is verified)`,
        ]
      : []),
  ];
  return {
    status: 'enforced',
    detail: `the sandbox sees only a per-sandbox placeholder in ${secrets.map((s) => `$${s.env}`).join(', ')}; the egress relay puts the real value in ${where.join(' and ')} only and refuses (and logs) a request carrying a placeholder to any other host it can read; other TLS connections are not decrypted, so they never get a real value`,
  };
}

/** The hosts (`host:port`) whose TLS the relay decrypts, each with the extra CA it trusts for the real server. */
export interface TlsTermination {
  ca: SandboxCa;
  hosts: ReadonlyMap<string, { upstreamCa: string | undefined }>;
}

/**
 * The TLS termination a policy asks for (none if no secret host asks): a CA of its own for
 * this sandbox, and each host's extra upstream CA read now (InvalidArgumentError if unreadable).
 */
export async function loadTlsTermination(
  secrets: readonly SecretPolicy[],
  sandboxId: string,
  context: ErrorContext,
): Promise<TlsTermination | undefined> {
  const hosts = new Map<string, { upstreamCa: string | undefined }>();
  for (const secret of secrets)
    for (const host of secret.hosts) {
      if (typeof host === 'string') continue;
      const file = host.upstreamCa;
      const upstreamCa =
        file === undefined
          ? undefined
          : await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
              throw new InvalidArgumentError(
                `policy.secrets: cannot read the upstream CA of ${host.host} from ${file} (${error.code})`,
                { ...context, cause: error },
              );
            });
      hosts.set(hostKey(host), { upstreamCa: upstreamCa ?? hosts.get(hostKey(host))?.upstreamCa });
    }
  return hosts.size > 0 ? { ca: new SandboxCa(sandboxId), hosts } : undefined;
}

/**
 * The files that make the sandbox trust its CA, for a backend to put in a folder `dir` of the
 * sandbox: the CA alone (`egress-ca.pem`, for Node's NODE_EXTRA_CA_CERTS, which adds to its
 * roots) and the host's roots with the CA (`ca-bundle.pem`, for OpenSSL-based clients, whose
 * SSL_CERT_FILE replaces theirs), and the variables that point clients at them.
 */
export async function tlsTrustFiles(
  termination: TlsTermination,
  dir: string,
): Promise<{ files: Record<string, string>; env: Record<string, string> }> {
  const roots = await readFile(SYSTEM_CA_BUNDLE, 'utf8').catch(() => '');
  const ca = termination.ca.certificatePem;
  const bundle = `${roots}${roots && !roots.endsWith('\n') ? '\n' : ''}${ca}`;
  return { files: { 'egress-ca.pem': ca, 'ca-bundle.pem': bundle }, env: tlsTrustEnv(dir) };
}

/** The variables that point TLS clients at the trust files in `dir` (see tlsTrustFiles). */
export function tlsTrustEnv(dir: string): Record<string, string> {
  const bundleFile = `${dir}/ca-bundle.pem`;
  return {
    NODE_EXTRA_CA_CERTS: `${dir}/egress-ca.pem`,
    SSL_CERT_FILE: bundleFile,
    CURL_CA_BUNDLE: bundleFile,
    REQUESTS_CA_BUNDLE: bundleFile,
    GIT_SSL_CAINFO: bundleFile,
  };
}

/** Where a jail's trust files go (a folder of its own under the jail's private /run), read-only. */
export const EGRESS_TRUST_DIR = '/run/agentbox';

/** Debian's (and most distributions') bundle of the system's trusted roots. */
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
