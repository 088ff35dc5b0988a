/**
 * policy.secrets on isolation 'bwrap', against two HTTP servers this test starts on loopback,
 * both on the allowlist: the sandbox reads only a placeholder; a request to the secret's host
 * arrives with the real value; the same placeholder sent to the other host is refused (403)
 * and logged; the value is nowhere in the sandbox's environment or files.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalSandbox } from '../src/index.js';
import '../src/index.js';
import { bwrapMissing } from './bwrap-available.js';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
}

async function recorder(seen: Seen[]): Promise<Server> {
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return server;
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

/** Every file under `dir` (the sandbox's directory on the host), as one text. */
async function allFiles(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }))
    if (entry.isFile()) parts.push(await readFile(join(entry.parentPath, entry.name), 'latin1'));
  return parts.join('\n');
}

describe.skipIf(bwrapMissing)(
  `local bwrap: secrets behind placeholders${bwrapMissing ? ` (skipped: ${bwrapMissing})` : ''}`,
  () => {
    const token = `sk-real-${process.pid}-${Date.now()}`;
    const key = `key-real-${process.pid}-${Date.now()}`;
    let root: string;
    let log: string;
    let sandbox: LocalSandbox;
    let api: Server;
    let other: Server;
    const apiSeen: Seen[] = [];
    const otherSeen: Seen[] = [];

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'agentbox-local-secrets-'));
      log = join(root, 'denied.log');
      api = await recorder(apiSeen);
      other = await recorder(otherSeen);
      process.env.AGENTBOX_TEST_API_TOKEN = token;
      await writeFile(join(root, 'key.txt'), `${key}\n`, { mode: 0o600 });
      sandbox = (await openSandbox({
        backend: 'local',
        config: { root: join(root, 'sandboxes'), isolation: 'bwrap', egressLog: log },
        policy: {
          network: { mode: 'allowlist', allow: [`localhost:${portOf(api)}`, `127.0.0.1:${portOf(other)}`] },
          secrets: [
            {
              env: 'API_TOKEN',
              from: { env: 'AGENTBOX_TEST_API_TOKEN' },
              hosts: [`localhost:${portOf(api)}`],
            },
            {
              env: 'API_KEY',
              from: { file: join(root, 'key.txt') },
              hosts: [`localhost:${portOf(api)}`],
              inRequestLine: true,
            },
          ],
        },
      })) as LocalSandbox;
    });

    afterAll(async () => {
      await sandbox?.close();
      api?.close();
      other?.close();
      delete process.env.AGENTBOX_TEST_API_TOKEN;
      await rm(root, { recursive: true, force: true });
    });

    const curl = (url: string) =>
      sandbox.exec(
        `curl -4 -s -S --max-time 10 -w '%{http_code}' -H "Authorization: Bearer $API_TOKEN" "${url}"`,
        { timeoutMs: 20_000 },
      );

    it('reports the control as enforced', () => {
      expect(sandbox.enforcement.secrets.status).toBe('enforced');
    });

    it('a command in the sandbox reads only the placeholder', async () => {
      const r = await sandbox.exec('printf "%s %s" "$API_TOKEN" "$API_KEY"');
      const [tokenSeen, keySeen] = r.stdout.split(' ');
      expect(tokenSeen).toMatch(/^agentbox-secret-[0-9a-f]{48}$/);
      expect(keySeen).toMatch(/^agentbox-secret-[0-9a-f]{48}$/);
      expect(tokenSeen).not.toBe(keySeen);
    });

    it('a request to the allowed host arrives with the real values (the request line only where asked)', async () => {
      const r = await curl(`http://localhost:${portOf(api)}/v1?key=$API_KEY&token=$API_TOKEN`);
      expect(r.stdout).toBe('ok\n200');
      const got = apiSeen.at(-1)!;
      expect(got.headers.authorization).toBe(`Bearer ${token}`);
      expect(got.url).toContain(`key=${key}&`);
      expect(got.url).toMatch(/token=agentbox-secret-[0-9a-f]{48}$/);
      expect(got.headers.connection).toBe('close');
    });

    it('the same placeholder to another allowed host is refused and logged (the value nowhere in the log)', async () => {
      const r = await curl(`http://127.0.0.1:${portOf(other)}/steal`);
      expect(r.stdout).toMatch(/403$/);
      expect(otherSeen).toEqual([]);
      // Without a placeholder the other host is reachable: the refusal is the secret's, not the allowlist's.
      const plain = await sandbox.exec(`curl -4 -s --max-time 10 http://127.0.0.1:${portOf(other)}/plain`, {
        timeoutMs: 20_000,
      });
      expect(plain.stdout).toBe('ok\n');
      await sandbox.egressLogged();
      const text = await readFile(log, 'utf8');
      const lines = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toContainEqual(
        expect.objectContaining({
          sandboxId: sandbox.id,
          protocol: 'secret',
          secret: 'API_TOKEN',
          destination: `127.0.0.1:${portOf(other)}`,
        }),
      );
      expect(Date.parse(lines.at(-1).time)).toBeGreaterThan(Date.now() - 60_000);
      expect(text).not.toContain(token);
      expect(text).not.toContain(key);
    });

    it('the real values are nowhere in the sandbox: not in any process environment, not in its files', async () => {
      const env = await sandbox.exec('env; cat /proc/[0-9]*/environ 2>/dev/null | tr "\\0" "\\n"');
      expect(env.stdout).toContain('API_TOKEN=agentbox-secret-');
      expect(env.stdout).not.toContain(token);
      expect(env.stdout).not.toContain(key);
      const tmp = await sandbox.exec('find /tmp /run -type f -exec cat {} + 2>/dev/null; true');
      expect(tmp.stdout).not.toContain(token);
      const files = await allFiles(join(root, 'sandboxes', sandbox.id));
      expect(files).not.toContain(token);
      expect(files).not.toContain(key);
    });
  },
);

describe('local: secrets where nothing can swap them in', () => {
  const secrets = [{ env: 'API_TOKEN', from: { env: 'PATH' }, hosts: ['localhost:9'] }];

  it("isolation 'none' refuses them in strict mode, and without strict gives the sandbox no value at all", async () => {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-local-secrets-none-'));
    try {
      await expect(
        openSandbox({ backend: 'local', config: { root }, policy: { secrets } }),
      ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE', controls: { secrets: expect.any(String) } });
      const loose = await openSandbox({
        backend: 'local',
        config: { root },
        policy: { secrets },
        strict: false,
      });
      try {
        expect(loose.enforcement.secrets.status).toBe('not-supported');
        const r = await loose.exec('printf "[%s]" "${API_TOKEN-unset}"');
        expect(r.stdout).toBe('[unset]');
      } finally {
        await loose.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
