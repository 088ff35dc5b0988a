/**
 * How the backend reaches Docker: the daemon address (config, else DOCKER_HOST read once at
 * open, else the default socket), a ping that turns an unreachable daemon into a
 * SandboxUnavailableError saying what to check, and the one table that maps Docker API
 * failures to typed errors.
 */

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AgentboxError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  SandboxUnavailableError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import Docker from 'dockerode';
import type { DockerConnection } from './config.js';

export interface DockerClient {
  docker: Docker;
  /** Where the daemon is, for messages: `unix:///var/run/docker.sock`, `tcp://host:2375`. */
  address: string;
  /** The daemon's unix socket, when that is how it is reached. */
  socketPath?: string;
}

const DEFAULT_SOCKET = '/var/run/docker.sock';

/** The environment variables that say where the daemon is, as the docker CLI reads them (read once, by the caller). */
export interface DockerEnv {
  DOCKER_HOST?: string | undefined;
  /** Non-empty: talk TLS to a tcp:// host and verify it. */
  DOCKER_TLS_VERIFY?: string | undefined;
  /** Directory of ca.pem, cert.pem and key.pem (default ~/.docker). */
  DOCKER_CERT_PATH?: string | undefined;
  /** The ssh agent an ssh:// host authenticates through. */
  SSH_AUTH_SOCK?: string | undefined;
  HOME?: string | undefined;
}

/** The Docker variables of `env` (process.env by default), read now. */
export function dockerEnv(env: Readonly<Record<string, string | undefined>> = process.env): DockerEnv {
  const { DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, SSH_AUTH_SOCK, HOME } = env;
  return { DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, SSH_AUTH_SOCK, HOME };
}

/**
 * Build a client for `unix://`, `tcp://` / `http://` (TLS with `https://`, port 2376,
 * DOCKER_TLS_VERIFY or the config's certificates) or `ssh://user@host` (the daemon's host runs
 * `docker system dial-stdio` over ssh; keys from the ssh agent). Never reads process.env.
 */
export function connectDocker(conn: DockerConnection, env: DockerEnv, context: ErrorContext): DockerClient {
  const spec = conn.socketPath
    ? `unix://${conn.socketPath}`
    : (conn.host ?? (env.DOCKER_HOST || undefined) ?? `unix://${DEFAULT_SOCKET}`);
  if (spec.startsWith('unix://')) {
    const socketPath = spec.slice('unix://'.length) || DEFAULT_SOCKET;
    return { docker: new Docker({ socketPath }), address: `unix://${socketPath}`, socketPath };
  }
  let url: URL;
  try {
    url = new URL(spec.includes('://') ? spec : `tcp://${spec}`);
  } catch {
    throw new InvalidArgumentError(`docker host "${spec}" is not a valid address`, {
      ...context,
      issues: [
        'config.docker.host: expected unix:///path, tcp://host:port, http(s)://host:port, ssh://user@host',
      ],
    });
  }
  if (url.protocol === 'ssh:') {
    const username = decodeURIComponent(url.username) || undefined;
    const docker = new Docker({
      protocol: 'ssh',
      host: url.hostname,
      port: url.port || 22,
      ...(username ? { username } : {}),
      sshOptions: env.SSH_AUTH_SOCK ? { agent: env.SSH_AUTH_SOCK } : {},
    } as Docker.DockerOptions);
    return { docker, address: `ssh://${username ? `${username}@` : ''}${url.host}` };
  }
  if (!['tcp:', 'http:', 'https:'].includes(url.protocol)) {
    throw new InvalidArgumentError(`docker host scheme ${url.protocol} is not supported`, {
      ...context,
      issues: ['config.docker.host: expected unix://, tcp://, http://, https:// or ssh://'],
    });
  }
  const tls =
    url.protocol === 'https:' ||
    url.port === '2376' ||
    Boolean(env.DOCKER_TLS_VERIFY) ||
    Boolean(conn.ca && conn.cert && conn.key);
  const material = conn.ca || conn.cert || conn.key ? conn : tls ? certificatesFrom(env, context) : {};
  const docker = new Docker({
    host: url.hostname,
    port: url.port || (tls ? 2376 : 2375),
    protocol: tls ? 'https' : 'http',
    ...(material.ca ? { ca: material.ca } : {}),
    ...(material.cert ? { cert: material.cert } : {}),
    ...(material.key ? { key: material.key } : {}),
  });
  return { docker, address: `${tls ? 'https' : 'tcp'}://${url.host}` };
}

/** ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH (default ~/.docker), as the docker CLI finds them. */
function certificatesFrom(
  env: DockerEnv,
  context: ErrorContext,
): { ca?: string; cert?: string; key?: string } {
  const dir = env.DOCKER_CERT_PATH || (env.HOME ? join(env.HOME, '.docker') : undefined);
  if (!dir) return {};
  const files = { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' } as const;
  const present = Object.values(files).filter((name) => existsSync(join(dir, name)));
  // Without DOCKER_CERT_PATH, no files in ~/.docker means a TLS daemon with a public certificate.
  if (present.length === 0 && !env.DOCKER_CERT_PATH) return {};
  if (present.length < 3)
    throw new InvalidArgumentError(
      `TLS to the Docker daemon needs ca.pem, cert.pem and key.pem in ${dir}; found ${present.join(', ') || 'none'}`,
      { ...context, issues: [`DOCKER_CERT_PATH: ${dir} lacks some of ca.pem, cert.pem, key.pem`] },
    );
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return { ca: read(files.ca), cert: read(files.cert), key: read(files.key) };
}

/** Transport failures that mean "the daemon cannot be reached", as opposed to an API error. */
const UNREACHABLE = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'EACCES',
  'EPERM',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'ABORT_ERR',
]);

export function isUnreachable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' &&
    UNREACHABLE.has(code) &&
    (error as { statusCode?: unknown }).statusCode === undefined
  );
}

export function unreachableError(
  address: string,
  error: unknown,
  context: ErrorContext,
): SandboxUnavailableError {
  const code = (error as { code?: string } | null)?.code ?? 'error';
  const hint =
    code === 'EACCES' || code === 'EPERM'
      ? 'this user may not use the socket: run as root or add the user to the docker group'
      : code === 'ENOENT'
        ? 'no socket there: is dockerd running (`docker info`)? does DOCKER_HOST or config.docker.host point at it?'
        : 'is dockerd running (`docker info`)? does DOCKER_HOST or config.docker.host point at it?';
  return new SandboxUnavailableError(`cannot reach the Docker daemon at ${address} (${code}): ${hint}`, {
    ...context,
    cause: error,
  });
}

/** Check the daemon answers, within `timeoutMs`. */
export async function pingDaemon(
  client: DockerClient,
  timeoutMs: number,
  context: ErrorContext,
): Promise<void> {
  try {
    const docker = client.docker as unknown as { ping(opts: { abortSignal: AbortSignal }): Promise<unknown> };
    const signal = AbortSignal.timeout(timeoutMs);
    const aborted = new Promise<never>((_, reject) =>
      signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
    );
    aborted.catch(() => {});
    await Promise.race([docker.ping({ abortSignal: signal }), aborted]);
  } catch (error) {
    const named = (error as { name?: string }).name;
    if (named === 'TimeoutError' || named === 'AbortError') {
      throw new SandboxUnavailableError(
        `the Docker daemon at ${client.address} did not answer within ${timeoutMs} ms: is it overloaded or hung? (\`docker info\`)`,
        { ...context, cause: error },
      );
    }
    if (isUnreachable(error)) throw unreachableError(client.address, error, context);
    throw dockerError(error, context);
  }
}

/** The message Docker sent with a failed API call (dockerode puts the JSON body on `json`). */
export function dockerMessage(error: unknown): string {
  const json = (error as { json?: unknown } | null)?.json;
  if (json && typeof json === 'object' && 'message' in json)
    return String((json as { message: unknown }).message);
  if (typeof json === 'string' && json.trim()) return json.trim();
  if (Buffer.isBuffer(json) && json.length) return json.toString('utf8').trim();
  return error instanceof Error ? error.message : String(error);
}

export function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Docker API failure → typed error. A transport failure (the daemon's socket gone, a connection
 * reset) is SANDBOX_UNAVAILABLE from any call; `address` names the daemon in its message.
 */
export function dockerError(error: unknown, context: ErrorContext, address?: string): AgentboxError {
  if (error instanceof AgentboxError) return error;
  if (isUnreachable(error)) return unreachableError(address ?? 'its configured address', error, context);
  const message = dockerMessage(error);
  const withCause = { ...context, cause: error };
  switch (statusOf(error)) {
    case 404:
      return new NotFoundError(message, withCause);
    case 403:
      return new PermissionDeniedError(message, withCause);
    default:
      return new AgentboxError(message, withCause);
  }
}
