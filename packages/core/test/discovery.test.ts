/**
 * Discovery: backends found by the `agentbox.backend` field of installed packages and by
 * AGENTBOX_BACKENDS, each in a registry of its own so the tests do not see each other's imports.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findBackends } from '../src/discovery.js';
import { InvalidArgumentError, listBackends, loadBackend } from '../src/index.js';
import { BackendRegistry, defaultRegistry } from '../src/registry.js';

const TWIN = fileURLToPath(new URL('./fixtures/backend-twin', import.meta.url));
const CLI = fileURLToPath(new URL('../../cli', import.meta.url));
const scratch: string[] = [];
afterAll(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

describe('discovery', () => {
  it('finds the backend packages in node_modules by their package.json field, nearest first', async () => {
    const found = await findBackends({ from: [CLI], env: {} });
    expect(found.map((f) => [f.kind, f.module])).toEqual(
      expect.arrayContaining([
        ['docker', '@agentbox/backend-docker'],
        ['local', '@agentbox/backend-local'],
        ['ssh', '@agentbox/backend-ssh'],
      ]),
    );
    // Nothing that is not a backend: only packages that say so.
    expect(found.every((f) => f.kind !== undefined)).toBe(true);
  });

  it('finds a module listed in AGENTBOX_BACKENDS, loads it by kind, and lists it', async () => {
    const env = { AGENTBOX_BACKENDS: ` ${TWIN} ,` };
    const registry = new BackendRegistry();
    expect(await findBackends({ from: [], env })).toEqual([{ kind: 'twin', module: TWIN, path: TWIN }]);
    const def = await loadBackend('twin', { from: [], env, registry: defaultRegistry });
    expect(def.kind).toBe('twin');
    expect(typeof def.sweep).toBe('function');
    expect(typeof def.doctor).toBe('function');
    expect(await listBackends({ from: [], env, registry })).toEqual(['twin']);
  });

  it('imports a listed file that does not say its kind, to learn it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'agentbox-discovery-'));
    scratch.push(dir);
    const file = join(dir, 'plain.mjs');
    await writeFile(
      file,
      `const key = Symbol.for('agentbox.registry');
globalThis[key].register({ kind: 'plain-${process.pid}', configSchema: { safeParse: () => ({ success: true, data: {} }) }, open: async () => { throw new Error('no'); } });
`,
    );
    const env = { AGENTBOX_BACKENDS: file };
    expect(await findBackends({ from: [], env })).toEqual([{ kind: undefined, module: file, path: file }]);
    expect((await loadBackend(`plain-${process.pid}`, { from: [], env })).kind).toBe(`plain-${process.pid}`);
  });

  it('suggests the found kind a misspelled one is closest to', async () => {
    const twin = new URL('./fixtures/backend-twin', import.meta.url).pathname;
    const err = await loadBackend('twn', {
      from: [],
      env: { AGENTBOX_BACKENDS: twin },
      registry: new BackendRegistry(),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toMatch(/unknown backend "twn" \(did you mean "twin"\?\); found: twin\b/);
  });

  it('refuses an unknown kind and a listed module that does not exist, naming what it found', async () => {
    const unknown = await loadBackend('nope', { from: [], env: {}, registry: new BackendRegistry() }).catch(
      (e) => e,
    );
    expect(unknown).toBeInstanceOf(InvalidArgumentError);
    expect(unknown.message).toMatch(/unknown backend "nope"; found: \(none\)/);
    const missing = await findBackends({ from: [], env: { AGENTBOX_BACKENDS: '/no/such/backend' } }).catch(
      (e) => e,
    );
    expect(missing).toBeInstanceOf(InvalidArgumentError);
    expect(missing.message).toContain('AGENTBOX_BACKENDS: "/no/such/backend" does not exist');
    const noPackage = await findBackends({ from: [], env: { AGENTBOX_BACKENDS: 'no-such-package-x' } }).catch(
      (e) => e,
    );
    expect(noPackage).toBeInstanceOf(InvalidArgumentError);
  });
});
