/**
 * What a JavaScript caller (no type checker) gets for a misspelled option: an InvalidArgumentError
 * that names the key and suggests the right one, on every entry point that takes an options object.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InvalidArgumentError, openSandbox, type SandboxBackend } from '../src/index.js';
import { BackendRegistry, defineBackend } from '../src/registry.js';
import './fixtures/backend-twin/index.ts';

// Typed as `any` on purpose: these calls are what JavaScript lets through.
// biome-ignore lint/suspicious/noExplicitAny: the point is to call the API the way untyped code does.
type Loose = any;

let root: string;
let sandbox: SandboxBackend;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentbox-options-'));
  sandbox = await openSandbox({ backend: 'twin', config: { root } });
});
afterAll(async () => {
  await sandbox?.close();
  await rm(root, { recursive: true, force: true });
});

async function refusal(call: () => Promise<unknown>): Promise<InvalidArgumentError> {
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidArgumentError);
  return error as InvalidArgumentError;
}

describe('unknown option keys', () => {
  it('exec refuses timeoutMS and suggests timeoutMs, before anything runs', async () => {
    const err = await refusal(() =>
      sandbox.exec('touch ran.txt', { timeoutMS: 100 } as Loose as { timeoutMs: number }),
    );
    expect(err.issues).toEqual(['timeoutMS: unknown key (did you mean "timeoutMs"?)']);
    expect(err.message).toBe(
      'twin.exec: invalid exec options: timeoutMS: unknown key (did you mean "timeoutMs"?)',
    );
    expect(err.backend).toBe('twin');
    expect(err.operation).toBe('exec');
    expect((await sandbox.exec('test -e ran.txt; echo $?')).stdout).toBe('1\n');
  });

  it('spawn, readFile, writeFile, checkpoint and rollback refuse unknown keys too', async () => {
    expect(() => sandbox.spawn('true', { maxOutputByte: 1 } as Loose)).toThrow(
      /maxOutputByte: unknown key \(did you mean "maxOutputBytes"\?\)/,
    );
    const read = await refusal(() => sandbox.readFile('x', { maxbytes: 1 } as Loose));
    expect(read.issues).toEqual(['maxbytes: unknown key (did you mean "maxBytes"?)']);
    const write = await refusal(() => sandbox.writeFile('x', 'y', { mod: 0o600 } as Loose));
    expect(write.issues).toEqual(['mod: unknown key (did you mean "mode"?)']);
    const cp = await refusal(() => sandbox.checkpoint({ lable: 'x' } as Loose));
    expect(cp.issues).toEqual(['lable: unknown key (did you mean "label"?)']);
    const back = await refusal(() => sandbox.rollback('nope', { sigal: undefined } as Loose));
    expect(back.issues).toEqual(['sigal: unknown key (did you mean "signal"?)']);
  });

  it('a value of the wrong type is refused with its path, and several issues are all listed', async () => {
    const err = await refusal(() => sandbox.exec('true', { timeoutMs: '5', env: { A: 1 }, zzz: 1 } as Loose));
    expect(err.issues).toEqual([
      'env.A: Invalid input: expected string, received number',
      'timeoutMs: Invalid input: expected number, received string',
      'zzz: unknown key',
    ]);
    expect(err.message).toContain(err.issues.join('; '));
  });

  it('accepts every documented option, with undefined values left out', async () => {
    const seen: string[] = [];
    const result = await sandbox.exec('cat; echo $X', {
      cwd: '.',
      env: { X: 'x' },
      stdin: 'in\n',
      timeoutMs: 10_000,
      signal: new AbortController().signal,
      killGraceMs: 0,
      maxOutputBytes: 1024,
      onStdout: (chunk) => seen.push(new TextDecoder().decode(chunk)),
      onStderr: undefined,
    });
    expect(result.stdout).toBe('in\nx\n');
    expect(seen.join('')).toBe('in\nx\n');
  });

  it('openSandbox refuses unknown keys in its options, the spec, the policy and the config', async () => {
    const registry = new BackendRegistry();
    registry.register(
      defineBackend({
        kind: 'fake',
        configSchema: z.strictObject({ image: z.string().default('x') }),
        open: async () => {
          throw new Error('not reached');
        },
      }),
    );
    const options = await refusal(() => openSandbox({ backend: 'fake' }, { registry, sigal: 1 } as Loose));
    expect(options.issues).toEqual(['sigal: unknown key (did you mean "signal"?)']);
    const spec = await refusal(() => openSandbox({ backend: 'fake', polcy: {} } as Loose, { registry }));
    expect(spec.issues).toEqual(['polcy: unknown key (did you mean "policy"?)']);
    expect(spec.backend).toBe('fake');
    const policy = await refusal(() =>
      openSandbox({ backend: 'fake', policy: { limits: { pid: 1 } } as Loose }, { registry }),
    );
    expect(policy.issues).toEqual(['policy.limits.pid: unknown key (did you mean "pids"?)']);
    const config = await refusal(() => openSandbox({ backend: 'fake', config: { imag: 'y' } }, { registry }));
    expect(config.issues).toEqual(['config.imag: unknown key (did you mean "image"?)']);
    expect(config.message).toBe(
      'fake.open: invalid fake config: config.imag: unknown key (did you mean "image"?)',
    );
    const kind = await refusal(() => openSandbox({ backend: 'fak' }, { registry }));
    expect(kind.message).toContain('unknown backend "fak" (did you mean "fake"?)');
  });
});
