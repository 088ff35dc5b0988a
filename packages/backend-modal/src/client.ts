/**
 * How the backend reaches Modal: one SDK client per handle (credentials and endpoint from the
 * config or Modal's own conventions), and the one table that maps SDK failures to typed errors.
 */
import {
  type AgentboxError,
  AuthenticationError,
  AgentboxError as BaseError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  SandboxUnavailableError,
} from '@agentbox/core';
import { type ErrorContext, fromErrno } from '@agentbox/core/backend';
import {
  InvalidError,
  ModalClient,
  NotFoundError as ModalNotFoundError,
  SandboxFilesystemIsADirectoryError,
  SandboxFilesystemNotADirectoryError,
  SandboxFilesystemNotFoundError,
  SandboxFilesystemPermissionError,
} from 'modal';
import type { ModalResolvedConfig } from './config.js';

/**
 * A client for `config`. modal 0.11 takes its endpoint only from MODAL_SERVER_URL or the
 * profile (its `endpoint` option is not read), so a configured `serverUrl` is put in
 * MODAL_SERVER_URL for the constructor alone (synchronous: nothing else runs meanwhile).
 */
export function modalClient(config: ModalResolvedConfig, context: ErrorContext): ModalClient {
  const saved = process.env.MODAL_SERVER_URL;
  if (config.serverUrl) process.env.MODAL_SERVER_URL = config.serverUrl;
  try {
    return new ModalClient({
      ...(config.tokenId ? { tokenId: config.tokenId } : {}),
      ...(config.tokenSecret ? { tokenSecret: config.tokenSecret } : {}),
      ...(config.environment ? { environment: config.environment } : {}),
    });
  } catch (error) {
    throw new AuthenticationError(
      `no Modal credentials: set tokenId and tokenSecret (or MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, or a profile in ~/.modal.toml): ${(error as Error).message}`,
      { ...context, cause: error },
    );
  } finally {
    if (config.serverUrl) {
      if (saved === undefined) delete process.env.MODAL_SERVER_URL;
      else process.env.MODAL_SERVER_URL = saved;
    }
  }
}

/** gRPC status codes the table reads (the SDK passes nice-grpc's ClientError through). */
const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, UNAUTHENTICATED: 16 };

/** An SDK failure as the typed error callers branch on. */
export function modalFailure(error: unknown, context: ErrorContext): AgentboxError {
  if (error instanceof BaseError) return error;
  const where = { ...context, cause: error };
  const message = (error as Error)?.message || String(error);
  if (error instanceof SandboxFilesystemNotFoundError) return fromErrno('ENOENT', message, context);
  if (error instanceof SandboxFilesystemIsADirectoryError) return fromErrno('EISDIR', message, context);
  if (error instanceof SandboxFilesystemNotADirectoryError) return fromErrno('ENOTDIR', message, context);
  if (error instanceof SandboxFilesystemPermissionError) return fromErrno('EACCES', message, context);
  if (error instanceof ModalNotFoundError) return new NotFoundError(message, where);
  if (error instanceof InvalidError) return new InvalidArgumentError(message, where);
  switch ((error as { code?: unknown })?.code) {
    case GRPC.UNAUTHENTICATED:
      return new AuthenticationError(`Modal refused the credentials: ${message}`, where);
    case GRPC.PERMISSION_DENIED:
      return new PermissionDeniedError(message, where);
    case GRPC.NOT_FOUND:
      return new NotFoundError(message, where);
    case GRPC.INVALID_ARGUMENT:
      return new InvalidArgumentError(message, where);
    default:
      return new SandboxUnavailableError(`Modal: ${message}`, where);
  }
}
