import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AgentboxError, InvalidArgumentError, type OpenProgress } from '../src/index.js';
import { BackendRegistry, defineBackend, openSandbox } from '../src/registry.js';

const registry = new BackendRegistry();
registry.register(
  defineBackend({
    kind: 'fake',
    configSchema: z.strictObject({ size: z.number().int().positive() }),
    open: async () => {
      throw new Error('not reached in these tests');
    },
  }),
);

describe('openSandbox', () => {
  it('names the known backends when the kind is unknown, and never falls back', async () => {
    const err = await openSandbox({ backend: 'dokcer' }, { registry }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toContain('unknown backend "dokcer"');
    expect(err.message).toContain('known: fake');
  });

  it('says which field of the spec is wrong and why', async () => {
    const err = await openSandbox(
      { backend: 'fake', config: { size: 1 }, policy: { limits: { pids: -1 } } },
      { registry },
    ).catch((e) => e);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.issues.join('\n')).toMatch(/^policy\.limits\.pids: /m);
  });

  it("validates the backend's config with its own schema", async () => {
    const err = await openSandbox({ backend: 'fake', config: { size: 'big' } }, { registry }).catch((e) => e);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.backend).toBe('fake');
    expect(err.issues[0]).toMatch(/^config\.size: /);
  });

  it('rejects unknown policy fields instead of ignoring them', async () => {
    const err = await openSandbox(
      { backend: 'fake', config: { size: 1 }, policy: { readonlyRoot: true } as never },
      { registry },
    ).catch((e) => e);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('readonlyRoot');
  });
});

describe('open progress', () => {
  it("hands the caller's onProgress to the backend's open, which reports its slow steps through it", async () => {
    const own = new BackendRegistry();
    own.register(
      defineBackend({
        kind: 'pulling',
        configSchema: z.strictObject({}),
        open: async (ctx) => {
          ctx.onProgress?.({
            backend: 'pulling',
            stage: 'pull',
            message: 'pulling x: 1 of 2 MiB',
            current: 1,
            total: 2,
          });
          throw new InvalidArgumentError('stop here', { backend: 'pulling' });
        },
      }),
    );
    const events: OpenProgress[] = [];
    const err = await openSandbox(
      { backend: 'pulling' },
      { registry: own, onProgress: (event) => events.push(event) },
    ).catch((e) => e);
    expect(err.message).toContain('stop here');
    expect(events).toEqual([
      { backend: 'pulling', stage: 'pull', message: 'pulling x: 1 of 2 MiB', current: 1, total: 2 },
    ]);
  });
});

describe('defineBackend', () => {
  it("types whatever a backend's sweep or doctor throws, naming the backend and the operation", async () => {
    const def = defineBackend({
      kind: 'leaky',
      configSchema: z.strictObject({}),
      open: async () => {
        throw new Error('not reached');
      },
      sweep: async () => {
        throw new TypeError('x is undefined');
      },
      doctor: async () => {
        throw Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
      },
    });
    const swept = await def.sweep!({ config: {}, dryRun: true }).catch((e: unknown) => e);
    expect(swept).toBeInstanceOf(AgentboxError);
    expect(swept).toMatchObject({ code: 'INTERNAL', backend: 'leaky', operation: 'sweep' });
    expect((swept as Error).cause).toBeInstanceOf(TypeError);
    const doctored = await def.doctor!({ config: {} }).catch((e: unknown) => e);
    expect(doctored).toMatchObject({ code: 'NOT_FOUND', backend: 'leaky', operation: 'doctor' });
  });
});
