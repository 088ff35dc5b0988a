/**
 * The CLI on the docker backend: an image pull shows its progress on stderr, and `sweep` keeps to
 * this user's sandboxes unless `--all`. Pulls reach only the registry on 127.0.0.1 that
 * scripts/provision-registry.sh starts; sweeps here are dry runs (other programs' sandboxes on
 * the shared daemon are never removed).
 */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressPrinter } from '../src/output.js';
import { BIN, ensureBuiltCli, PACKAGE_DIR } from './built-cli.ts';

beforeAll(ensureBuiltCli, 180_000);

const run = promisify(execFile);
const REPO = join(PACKAGE_DIR, '../..');
const TEST_IMAGE = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';
const REGISTRY = `127.0.0.1:${process.env.AGENTBOX_REGISTRY_PORT ?? '5000'}`;
const runId = `${process.pid}-${Date.now().toString(36)}`;

function agentbox(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: PACKAGE_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { code: null as number | null, stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    out.stdout += text;
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    out.stderr += text;
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ ...out, code }));
  });
}

describe('progressPrinter', () => {
  it('prints each step, byte counts at most once per interval, and always the last count', () => {
    const lines: string[] = [];
    const print = progressPrinter((line) => lines.push(line), 60_000);
    const bytes = (current: number) => ({
      backend: 'docker',
      stage: 'pull',
      message: `pulling x: ${current} of 4.0 MiB`,
      current,
      total: 4,
    });
    print({ backend: 'docker', stage: 'pull', message: 'pulling x' });
    print(bytes(1));
    print(bytes(2));
    print(bytes(3));
    print(bytes(4));
    print({ backend: 'docker', stage: 'pull', message: 'pulling x: Status: Downloaded newer image for x' });
    expect(lines).toEqual([
      'agentbox: pulling x\n',
      'agentbox: pulling x: 1 of 4.0 MiB\n',
      'agentbox: pulling x: 4 of 4.0 MiB\n',
      'agentbox: pulling x: Status: Downloaded newer image for x\n',
    ]);
  });
});

describe('docker', () => {
  let dockerMissing: string | undefined;
  const created: string[] = [];
  beforeAll(async () => {
    try {
      await run('bash', [join(REPO, 'scripts/provision-docker.sh')]);
      await run('bash', [join(REPO, 'scripts/provision-registry.sh')]);
    } catch (error) {
      dockerMissing = `no Docker daemon or registry: ${(error as { stderr?: string }).stderr ?? error}`;
      console.warn(`cli docker.test.ts: SKIPPING: ${dockerMissing}`);
    }
  }, 300_000);
  afterAll(async () => {
    for (const ref of created) await run('docker', ['rmi', ref]).catch(() => {});
  });

  it('open prints the pull of a missing image on stderr, stdout stays the result', async ({ skip }) => {
    if (dockerMissing) skip(dockerMissing);
    const image = `${REGISTRY}/agentbox/cli-pull-test:${runId}`;
    await run('docker', ['tag', TEST_IMAGE, image]);
    created.push(image);
    await run('docker', ['push', '-q', image]);
    await run('docker', ['rmi', image]);
    const config = JSON.stringify({ image, helperImage: TEST_IMAGE, pull: 'missing' });
    const id = `cli-pull-${runId}`;
    const opened = await agentbox(['open', '--backend', 'docker', '--config', config, '--id', id, '--json']);
    try {
      expect(opened.code).toBe(0);
      expect(opened.stderr.split('\n')).toEqual(
        expect.arrayContaining([
          `agentbox: pulling ${image}`,
          `agentbox: pulling ${image}: Status: Downloaded newer image for ${image}`,
        ]),
      );
      expect(JSON.parse(opened.stdout)).toMatchObject({ id, backend: 'docker' });
    } finally {
      const closed = await agentbox(['close', '--backend', 'docker', '--config', config, '--id', id]);
      expect(closed.code).toBe(0);
    }
  }, 120_000);

  it("sweep --dry-run lists this user's sandboxes only; --all adds another owner's", async ({ skip }) => {
    if (dockerMissing) skip(dockerMissing);
    const id = `cli-theirs-${runId}`;
    const { stdout } = await run('docker', [
      'create',
      '--name',
      `agentbox-${id}`,
      '--label',
      'agentbox.creator=agentbox',
      '--label',
      `agentbox.sandbox-id=${id}`,
      '--label',
      'agentbox.role=sandbox',
      '--label',
      'agentbox.owner=someone-else@another-host',
      TEST_IMAGE,
      'true',
    ]);
    try {
      const listed = async (flags: string[]) => {
        const r = await agentbox(['sweep', '--backend', 'docker', '--dry-run', '--json', ...flags]);
        expect(r.code).toBe(0);
        return (JSON.parse(r.stdout) as { sandboxes: { id: string }[] }).sandboxes.map((s) => s.id);
      };
      expect(await listed([])).not.toContain(id);
      expect(await listed(['--all'])).toContain(id);
    } finally {
      await run('docker', ['rm', '-f', stdout.trim()]);
    }
  }, 60_000);
});
