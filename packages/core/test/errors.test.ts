import { describe, expect, it } from 'vitest';
import { toAgentboxError } from '../src/backend.js';
import {
  AgentboxError,
  CheckpointCorruptError,
  CheckpointNotFoundError,
  NotFoundError,
  SandboxUnavailableError,
  TimeoutError,
} from '../src/index.js';

describe('typed errors', () => {
  it('carry a stable code, status, retryable flag, backend and operation', () => {
    const err = new SandboxUnavailableError('daemon down', { backend: 'docker', operation: 'open' });
    expect(err.code).toBe('SANDBOX_UNAVAILABLE');
    expect(err.status).toBe(503);
    expect(err.retryable).toBe(true);
    expect(err.backend).toBe('docker');
    expect(err.operation).toBe('open');
    expect(err.message).toBe('docker.open: daemon down');
    expect(err).toBeInstanceOf(AgentboxError);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(NotFoundError);
  });

  it('keep instanceof working across two copies of the package', () => {
    // A second copy of core would define its own classes; the Symbol.for brand is what they share.
    const foreign = Object.create(Object.getPrototypeOf(new NotFoundError('x')));
    Object.setPrototypeOf(foreign, {
      [Symbol.for('agentbox.error')]: true,
      [Symbol.for('agentbox.error.NOT_FOUND')]: true,
    });
    expect(foreign instanceof NotFoundError).toBe(true);
    expect(foreign instanceof AgentboxError).toBe(true);
    expect(foreign instanceof TimeoutError).toBe(false);
  });

  it('map errno codes and keep the cause', () => {
    const cause = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    const err = toAgentboxError(cause, { backend: 'local', operation: 'readFile' });
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.cause).toBe(cause);
    const abort = toAgentboxError(new DOMException('stop', 'AbortError'), { operation: 'open' });
    expect(abort.code).toBe('ABORTED');
  });

  it('CheckpointCorruptError is its own kind: CHECKPOINT_CORRUPT, never restored', () => {
    const err = new CheckpointCorruptError('bad MAC', { operation: 'rollback', subject: 'ckpt-x' });
    expect(err.code).toBe('CHECKPOINT_CORRUPT');
    expect(err.status).toBe(422);
    expect(err.retryable).toBe(false);
    expect(err).toBeInstanceOf(AgentboxError);
    expect(err).not.toBeInstanceOf(CheckpointNotFoundError);
  });
});
