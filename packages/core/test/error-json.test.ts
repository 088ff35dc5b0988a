/** What a typed error looks like through JSON.stringify: nothing a caller branches on is lost. */
import { describe, expect, it } from 'vitest';
import {
  AgentboxError,
  InvalidArgumentError,
  ModelUnavailableError,
  NotFoundError,
  PolicyNotEnforceableError,
  TimeoutError,
} from '../src/index.js';

const roundTrip = (value: unknown) => JSON.parse(JSON.stringify(value));

describe('AgentboxError.toJSON', () => {
  it('keeps name, code, message, backend, operation and the fields of its kind', () => {
    const err = new InvalidArgumentError('invalid exec options: timeoutMS: unknown key', {
      backend: 'local',
      operation: 'exec',
      sandboxId: 'abc',
      issues: ['timeoutMS: unknown key'],
    });
    expect(roundTrip(err)).toEqual({
      name: 'InvalidArgumentError',
      code: 'INVALID_ARGUMENT',
      message: 'local.exec: invalid exec options: timeoutMS: unknown key',
      status: 400,
      retryable: false,
      backend: 'local',
      operation: 'exec',
      sandboxId: 'abc',
      issues: ['timeoutMS: unknown key'],
    });
    const policy = new PolicyNotEnforceableError('no', { network: 'no netns' }, { backend: 'local' });
    expect(roundTrip(policy).controls).toEqual({ network: 'no netns' });
  });

  it('serialises the cause chain, a Node system error with its errno fields', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {
      code: 'ECONNREFUSED',
      syscall: 'connect',
      address: '127.0.0.1',
      port: 9,
    });
    const fetchFailed = new TypeError('fetch failed', { cause: refused });
    const err = new ModelUnavailableError('unreachable', 'http://127.0.0.1:9/v1', {
      backend: 'model',
      operation: 'complete',
      cause: fetchFailed,
    });
    const json = roundTrip(err);
    expect(json.code).toBe('MODEL_UNAVAILABLE');
    expect(json.url).toBe('http://127.0.0.1:9/v1');
    expect(json.cause).toEqual({
      name: 'TypeError',
      message: 'fetch failed',
      cause: {
        name: 'Error',
        message: 'connect ECONNREFUSED 127.0.0.1:9',
        code: 'ECONNREFUSED',
        syscall: 'connect',
        address: '127.0.0.1',
        port: 9,
      },
    });
    expect(JSON.stringify(err)).not.toContain('stack');
  });

  it('survives cycles, non-Error causes and bytes', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    const cyclic = new AgentboxError('outer', { cause: a });
    expect(roundTrip(cyclic).cause.cause.cause).toBe('[Circular]');

    const loop: Record<string, unknown> = { n: 1n, f: () => 1 };
    loop.self = loop;
    expect(roundTrip(new NotFoundError('x', { cause: loop })).cause).toEqual({ n: '1', self: '[Circular]' });
    expect(roundTrip(new NotFoundError('x', { cause: 'just text' })).cause).toBe('just text');
    expect(roundTrip(new NotFoundError('x', { cause: null })).cause).toBeNull();

    const partial = {
      stdout: 'so far',
      stderr: '',
      stdoutBytes: new Uint8Array([1, 2]),
      stderrBytes: new Uint8Array(),
      durationMs: 5,
    };
    const timeout = roundTrip(new TimeoutError('slow', 5, partial, { backend: 'local', operation: 'exec' }));
    expect(timeout.timeoutMs).toBe(5);
    expect(timeout.partial).toEqual({ stdout: 'so far', stderr: '', durationMs: 5 });

    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('no');
        },
      },
    );
    expect(roundTrip(new NotFoundError('x', { cause: hostile })).cause).toBe('[object Object]');
  });

  it('an InvalidArgumentError always lists at least one issue', () => {
    expect(new InvalidArgumentError('bad thing').issues).toEqual(['bad thing']);
  });
});
