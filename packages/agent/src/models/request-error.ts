/** The failures of a model request, typed the same way whichever SDK made it. */
import {
  AbortedError,
  type AgentboxError,
  AuthenticationError,
  InvalidArgumentError,
  ModelUnavailableError,
  NotFoundError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';

/**
 * A model that did not answer but may later (429, 5xx, timeout, connection refused): the failover
 * layer retries it, honouring `retryAfterMs`, or moves on to the fallback.
 */
export class ModelRequestError extends ModelUnavailableError {
  /** The HTTP status, when the server answered. */
  readonly httpStatus: number | undefined;
  /** How long the server asked us to wait (`retry-after-ms` or `retry-after`), when it said. */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    url: string,
    details: { httpStatus?: number; retryAfterMs?: number },
    context: ErrorContext = {},
  ) {
    super(message, url, context);
    this.httpStatus = details.httpStatus;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The parts of the openai and @anthropic-ai/sdk error classes we read (both SDKs share the shape). */
interface SdkError {
  name?: string;
  status?: number;
  headers?: { get(name: string): string | null } | undefined;
  message?: string;
}

/** `retry-after-ms` first (more precise), then `retry-after` in seconds or as an HTTP date. */
export function retryAfterFromHeaders(
  headers: { get(name: string): string | null } | undefined,
  now = Date.now(),
): number | undefined {
  const ms = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers?.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The Node error code deepest in a cause chain (the SDKs hide ECONNREFUSED under "Connection error."). */
function causeCode(error: unknown): string | undefined {
  let code: string | undefined;
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 8; depth++) {
    const own = (e as { code?: unknown }).code;
    if (typeof own === 'string') code = own;
    e = e instanceof AggregateError && e.errors.length ? e.errors[0] : (e as { cause?: unknown }).cause;
  }
  return code;
}

/** What a Node error code under a failed connection means, for a person. */
export const UNREACHABLE_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused: nothing listens there',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved (DNS)',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  ETIMEDOUT: 'connecting timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connecting timed out',
  UND_ERR_SOCKET: 'the connection closed unexpectedly',
};

/** One table from an SDK error to the typed error a caller acts on. */
export function modelRequestFailure(
  error: unknown,
  at: {
    url: string;
    model: string;
    timeoutMs: number;
    signal: AbortSignal | undefined;
    context: ErrorContext;
  },
): AgentboxError {
  const { url, context } = at;
  const e = (error ?? {}) as SdkError;
  if (at.signal?.aborted || e.name === 'APIUserAbortError')
    return new AbortedError('the model request was aborted', {
      ...context,
      cause: at.signal?.reason ?? error,
    });
  if (e.name === 'APIConnectionTimeoutError')
    return new ModelRequestError(
      `the model endpoint ${url} gave no answer within ${at.timeoutMs} ms`,
      url,
      {},
      { ...context, cause: error },
    );
  if (e.status === undefined) {
    const code = causeCode(error);
    const reason = code
      ? `${UNREACHABLE_REASONS[code] ?? e.message ?? String(error)} (${code})`
      : (e.message ?? String(error));
    return new ModelRequestError(
      `cannot reach the model endpoint ${url}: ${reason}. Check that the model server is running and that the base URL points at it`,
      url,
      {},
      { ...context, cause: error },
    );
  }
  const status = e.status;
  const said = e.message ? `: ${e.message.slice(0, 500)}` : '';
  if (status === 401 || status === 403)
    return new AuthenticationError(`the model endpoint ${url} refused the credentials (${status})${said}`, {
      ...context,
      cause: error,
    });
  if (status === 404)
    return new NotFoundError(
      `the model endpoint ${url} answered 404${said}: check the base URL and that it serves "${at.model}"`,
      { ...context, subject: url, cause: error },
    );
  if (status === 408 || status === 409 || status === 429 || status >= 500) {
    const retryAfterMs = retryAfterFromHeaders(e.headers);
    return new ModelRequestError(
      `the model endpoint ${url} answered ${status}${said}`,
      url,
      { httpStatus: status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
      { ...context, cause: error },
    );
  }
  return new InvalidArgumentError(`the model endpoint ${url} refused the request (${status})${said}`, {
    ...context,
    issues: [`request: ${status}${said}`],
    cause: error,
  });
}
