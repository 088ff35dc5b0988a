/**
 * How the backend reaches Docker: the daemon address (config, else DOCKER_HOST read once at
 * open, else the default socket), a ping that turns an unreachable daemon into a
 * SandboxUnavailableError saying what to check, and the one table that maps Docker API
 * failures to typed errors.
 */
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
}

const DEFAULT_SOCKET = '/var/run/docker.sock';

/** Build a client. `envHost` is DOCKER_HOST as read by the caller (never read here mid-operation). */
export function connectDocker(
  conn: DockerConnection,
  envHost: string | undefined,
  context: ErrorContext,
): DockerClient {
  const spec = conn.socketPath
    ? `unix://${conn.socketPath}`
    : (conn.host ?? envHost ?? `unix://${DEFAULT_SOCKET}`);
  if (spec.startsWith('unix://')) {
    const socketPath = spec.slice('unix://'.length) || DEFAULT_SOCKET;
    return { docker: new Docker({ socketPath }), address: `unix://${socketPath}` };
  }
  let url: URL;
  try {
    url = new URL(spec.includes('://') ? spec : `tcp://${spec}`);
  } catch {
    throw new InvalidArgumentError(`docker host "${spec}" is not a valid address`, {
      ...context,
      issues: ['config.docker.host: expected unix:///path, tcp://host:port, http(s)://host:port'],
    });
  }
  const tls = url.protocol === 'https:' || url.port === '2376' || Boolean(conn.ca && conn.cert && conn.key);
  if (!['tcp:', 'http:', 'https:'].includes(url.protocol)) {
    throw new InvalidArgumentError(`docker host scheme ${url.protocol} is not supported`, {
      ...context,
      issues: ['config.docker.host: expected unix://, tcp://, http:// or https://'],
    });
  }
  const docker = new Docker({
    host: url.hostname,
    port: url.port || (tls ? 2376 : 2375),
    protocol: tls ? 'https' : 'http',
    ...(conn.ca ? { ca: conn.ca } : {}),
    ...(conn.cert ? { cert: conn.cert } : {}),
    ...(conn.key ? { key: conn.key } : {}),
  });
  return { docker, address: `${tls ? 'https' : 'tcp'}://${url.host}` };
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

/** Docker API failure → typed error. `address` is given when a transport failure is possible. */
export function dockerError(error: unknown, context: ErrorContext, address?: string): AgentboxError {
  if (error instanceof AgentboxError) return error;
  if (address && isUnreachable(error)) return unreachableError(address, error, context);
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
