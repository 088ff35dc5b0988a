/**
 * How the backend reaches Vercel: the credentials and `fetch` every SDK call gets (from the
 * config or Vercel's environment variables), and the one table that maps SDK failures to typed errors.
 */
import {
  AgentboxError,
  AuthenticationError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  SandboxUnavailableError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import type { VercelResolvedConfig } from './config.js';

/** The SDK's base URL, which `apiUrl` stands in for. */
const VERCEL_API = 'https://vercel.com/api';

/** What every SDK entry point takes: explicit credentials (or none, for OIDC) and the fetch to use. */
export interface VercelCredentials {
  token?: string;
  teamId?: string;
  projectId?: string;
  fetch?: typeof globalThis.fetch;
}

/** Resolve credentials once, at open (never in the middle of an operation). */
export function vercelCredentials(config: VercelResolvedConfig, context: ErrorContext): VercelCredentials {
  const env = process.env;
  const token = config.token ?? env.VERCEL_TOKEN;
  const teamId = config.teamId ?? env.VERCEL_TEAM_ID ?? env.VERCEL_ORG_ID;
  const projectId = config.projectId ?? env.VERCEL_PROJECT_ID;
  const credentials: VercelCredentials = {};
  if (token !== undefined) {
    const missing = [teamId ? null : 'teamId', projectId ? null : 'projectId'].filter(Boolean);
    if (missing.length > 0)
      throw new AuthenticationError(
        `a Vercel token needs ${missing.join(' and ')} too (config, or VERCEL_TEAM_ID / VERCEL_PROJECT_ID)`,
        context,
      );
    Object.assign(credentials, { token, teamId, projectId });
  } else if (!env.VERCEL_OIDC_TOKEN) {
    throw new AuthenticationError(
      'no Vercel credentials: set token, teamId and projectId (or VERCEL_TOKEN, VERCEL_TEAM_ID, VERCEL_PROJECT_ID), or VERCEL_OIDC_TOKEN',
      context,
    );
  }
  if (config.apiUrl) {
    const base = config.apiUrl.replace(/\/+$/, '');
    credentials.fetch = (input, init) => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const target = url.startsWith(VERCEL_API) ? `${base}${url.slice(VERCEL_API.length)}` : url;
      return globalThis.fetch(target, init);
    };
  }
  return credentials;
}

/** Operations on a sandbox that exists: a 404 during one says the sandbox itself is gone. */
const SANDBOX_WORK = new Set(['exec', 'spawn', 'readFile', 'writeFile', 'checkpoint', 'rollback']);

/** An SDK failure as the typed error callers branch on. */
export function vercelFailure(error: unknown, context: ErrorContext): AgentboxError {
  if (error instanceof AgentboxError) return error;
  const err = error as {
    message?: string;
    response?: { status?: number };
    json?: { error?: { code?: string } };
  };
  const status = err?.response?.status;
  const message = err?.message || String(error);
  const where = { ...context, cause: error };
  switch (status) {
    case 401:
      return new AuthenticationError(`Vercel refused the credentials: ${message}`, where);
    case 403:
      return new PermissionDeniedError(message, where);
    case 404:
      // A file that is missing is found by probing, never by a 404: in the middle of work on
      // the sandbox, a 404 means the provider no longer knows the sandbox (or its session).
      if (context.operation && SANDBOX_WORK.has(context.operation))
        return new SandboxUnavailableError(`Vercel no longer knows this sandbox: ${message}`, where);
      return new NotFoundError(message, where);
    case 400:
    case 422:
      return new InvalidArgumentError(message, where);
    default:
      return new SandboxUnavailableError(`Vercel: ${message}`, where);
  }
}
