/**
 * How the backend reaches Daytona: the SDK client built from the config (or Daytona's own
 * environment variables), and the one table that maps SDK failures to typed errors.
 */
import {
  AgentboxError,
  AuthenticationError,
  InvalidArgumentError,
  IsADirectoryError,
  NotFoundError,
  PermissionDeniedError,
  SandboxUnavailableError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import { Daytona, type DaytonaConfig as SdkConfig } from '@daytonaio/sdk';
import type { DaytonaResolvedConfig } from './config.js';

export function connectDaytona(config: DaytonaResolvedConfig, context: ErrorContext): Daytona {
  const sdk: SdkConfig = {
    ...(config.apiUrl ? { apiUrl: config.apiUrl } : {}),
    ...(config.apiKey ? { apiKey: config.apiKey } : {}),
    ...(config.jwtToken ? { jwtToken: config.jwtToken } : {}),
    ...(config.organizationId ? { organizationId: config.organizationId } : {}),
    ...(config.target ? { target: config.target } : {}),
    ...(config.requestTimeoutMs ? { requestTimeoutMs: config.requestTimeoutMs } : {}),
    ...(config.polling ? { useDeprecatedPolling: true } : {}),
  };
  try {
    return new Daytona(sdk);
  } catch (error) {
    throw daytonaFailure(error, context);
  }
}

/** Operations whose 404 can only mean the sandbox itself is gone (a missing file is a file operation's). */
const SANDBOX_WORK = new Set(['exec', 'spawn', 'checkpoint', 'rollback']);

/** An SDK failure as the typed error callers branch on. */
export function daytonaFailure(error: unknown, context: ErrorContext): AgentboxError {
  if (error instanceof AgentboxError) return error;
  const err = error as { name?: string; message?: string; statusCode?: number };
  const message = err?.message ?? String(error);
  const where = { ...context, cause: error };
  if (err?.name === 'DaytonaAuthenticationError' || err?.statusCode === 401)
    return new AuthenticationError(`Daytona refused the credentials: ${message}`, where);
  switch (err?.statusCode) {
    case 403:
      return new PermissionDeniedError(message, where);
    case 404:
      // A command or a checkpoint on a sandbox Daytona no longer knows: the sandbox is gone.
      if (context.operation && SANDBOX_WORK.has(context.operation))
        return new SandboxUnavailableError(`Daytona no longer knows this sandbox: ${message}`, where);
      return new NotFoundError(message, where);
    case 400:
      if (/is a directory/i.test(message)) return new IsADirectoryError(message, where);
      if (/not a directory/i.test(message)) return new NotFoundError(message, where);
      return new InvalidArgumentError(message, where);
    default:
      return new SandboxUnavailableError(`Daytona: ${message}`, where);
  }
}
