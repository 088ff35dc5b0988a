/**
 * policy.secrets on a jailed SSH sandbox, against two HTTP servers this test starts on loopback
 * (the test sshd runs on this machine), both on the allowlist: the sandbox reads only a
 * placeholder, a request to the secret's host arrives with the real value, and the same
 * placeholder sent to the other host is refused (403) and logged without the value; and an HTTPS
 * server (certificate from an openssl-made CA) gets the real value through TLS termination.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshSandbox } from '../src/index.js';
import '../src/index.js';
import { httpsRecorder, makeTestPki, type SeenRequest } from '../../../scripts/test-pki.ts';
import { sshCli, sshConfig } from './sshd.ts';

const rootName = `ssh-secrets-${process.pid}-${Date.now().toString(36)}`;
const hostReady =
  (await sshCli('command -v bwrap nsenter setpriv node curl >/dev/null && echo yes || echo no')).trim() ===
  'yes';

async function recorder(seen: IncomingHttpHeaders[]): Promise<Server> {
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return server;
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

describe.skipIf(!hostReady)(
  `ssh: secrets behind placeholders${hostReady ? '' : ' (skipped: the SSH host lacks bwrap, nsenter, setpriv, node or curl)'}`,
  () => {
    const token = `sk-real-${process.pid}-${Date.now()}`;
    let root: string;
    let sandbox: SshSandbox;
    let api: Server;
    let other: Server;
    let secure: HttpsServer;
    const secureSeen: SeenRequest[] = [];
    const apiSeen: IncomingHttpHeaders[] = [];
    const otherSeen: IncomingHttpHeaders[] = [];

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'agentbox-ssh-secrets-'));
      api = await recorder(apiSeen);
      other = await recorder(otherSeen);
      secure = await httpsRecorder(makeTestPki(root), secureSeen);
      process.env.AGENTBOX_TEST_SSH_TOKEN = token;
      sandbox = (await openSandbox({
        backend: 'ssh',
        config: sshConfig({
          root: `~/.agentbox/${rootName}`,
          isolation: 'bwrap',
          egressLog: join(root, 'egress-denied.log'),
        }),
        policy: {
          network: {
            mode: 'allowlist',
            allow: [`localhost:${portOf(api)}`, `127.0.0.1:${portOf(other)}`, `localhost:${portOf(secure)}`],
          },
          secrets: [
            {
              env: 'API_TOKEN',
              from: { env: 'AGENTBOX_TEST_SSH_TOKEN' },
              hosts: [
                `localhost:${portOf(api)}`,
                // HTTPS, decrypted by the relay; the test server's CA is the upstream CA.
                { host: `localhost:${portOf(secure)}`, terminateTls: true, upstreamCa: join(root, 'ca.pem') },
              ],
            },
          ],
        },
      })) as SshSandbox;
    });

    afterAll(async () => {
      await sandbox?.close();
      api?.close();
      other?.close();
      secure?.close();
      delete process.env.AGENTBOX_TEST_SSH_TOKEN;
      await rm(root, { recursive: true, force: true });
      await sshCli(`rm -rf "$HOME/.agentbox/${rootName}"`).catch(() => {});
    });

    const curl = (url: string) =>
      sandbox.exec(
        `curl -4 -s -S --max-time 10 -w '%{http_code}' -H "Authorization: Bearer $API_TOKEN" "${url}"`,
        {
          timeoutMs: 20_000,
        },
      );

    it('the sandbox reads only the placeholder; the allowed host gets the real value', async () => {
      expect(sandbox.enforcement.secrets.status).toBe('enforced');
      const env = await sandbox.exec('env');
      expect(env.stdout).toMatch(/^API_TOKEN=agentbox-secret-[0-9a-f]{48}$/m);
      expect(env.stdout).not.toContain(token);
      const r = await curl(`http://localhost:${portOf(api)}/`);
      expect(r.stdout).toBe('ok\n200');
      expect(apiSeen.at(-1)?.authorization).toBe(`Bearer ${token}`);
    });

    it('an HTTPS host opted into TLS termination gets the real value; curl in the jail trusts the sandbox CA', async () => {
      const r = await curl(`https://localhost:${portOf(secure)}/tls`);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('ok\n200');
      expect(secureSeen.at(-1)).toMatchObject({ url: '/tls', headers: { authorization: `Bearer ${token}` } });
      const trust = await sandbox.exec('cat /run/agentbox/egress-ca.pem; echo "$SSL_CERT_FILE"');
      expect(trust.stdout).toMatch(
        /^-----BEGIN CERTIFICATE-----\n[\s\S]*\n\/run\/agentbox\/ca-bundle\.pem\n$/,
      );
    });

    it('the placeholder sent to another allowed host is refused and logged, without the value', async () => {
      const r = await curl(`http://127.0.0.1:${portOf(other)}/`);
      expect(r.stdout).toMatch(/403$/);
      expect(otherSeen).toEqual([]);
      await sandbox.egressLogged();
      const text = await readFile(join(root, 'egress-denied.log'), 'utf8');
      expect(
        text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l)),
      ).toContainEqual(
        expect.objectContaining({
          sandboxId: sandbox.id,
          protocol: 'secret',
          secret: 'API_TOKEN',
          destination: `127.0.0.1:${portOf(other)}`,
        }),
      );
      expect(text).not.toContain(token);
    });
  },
);
