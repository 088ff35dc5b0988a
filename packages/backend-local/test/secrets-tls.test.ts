/**
 * policy.secrets over HTTPS on isolation 'bwrap': the relay decrypts only the hosts that opt in
 * (terminateTls), with a certificate of a CA made for the sandbox, and verifies the real server.
 * The servers here are HTTPS servers on loopback whose certificate comes from a CA that openssl
 * makes for the test, unknown to the system: the policy names it as the upstream CA.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSandbox } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalSandbox } from '../src/index.js';
import '../src/index.js';
import { httpsRecorder, makeTestPki, type SeenRequest } from '../../../scripts/test-pki.ts';
import { bwrapMissing } from './bwrap-available.js';

const portOf = (s: Server) => (s.address() as { port: number }).port;

describe.skipIf(bwrapMissing)(
  `local bwrap: secrets to HTTPS hosts (TLS termination)${bwrapMissing ? ` (skipped: ${bwrapMissing})` : ''}`,
  () => {
    const token = `sk-tls-${process.pid}-${Date.now()}`;
    let dir: string;
    let sandbox: LocalSandbox;
    let api: Server;
    let other: Server;
    let unverified: Server;
    const apiSeen: SeenRequest[] = [];
    const otherSeen: SeenRequest[] = [];
    const unverifiedSeen: SeenRequest[] = [];
    let log: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'agentbox-local-secrets-tls-'));
      const pki = makeTestPki(dir);
      api = await httpsRecorder(pki, apiSeen);
      other = await httpsRecorder(pki, otherSeen);
      unverified = await httpsRecorder(pki, unverifiedSeen);
      log = join(dir, 'denied.log');
      process.env.AGENTBOX_TEST_TLS_TOKEN = token;
      const tlsHost = (host: string) => ({ host, terminateTls: true as const, upstreamCa: pki.caFile });
      sandbox = (await openSandbox({
        backend: 'local',
        config: { root: join(dir, 'sandboxes'), isolation: 'bwrap', egressLog: log },
        policy: {
          network: {
            mode: 'allowlist',
            allow: [
              `localhost:${portOf(api)}`,
              `127.0.0.1:${portOf(other)}`,
              `127.0.0.1:${portOf(unverified)}`,
            ],
          },
          secrets: [
            {
              env: 'API_TOKEN',
              from: { env: 'AGENTBOX_TEST_TLS_TOKEN' },
              hosts: [tlsHost(`localhost:${portOf(api)}`)],
            },
            // Decrypted too, so a placeholder of API_TOKEN sent there can be seen and refused.
            { env: 'OTHER_TOKEN', from: { env: 'PATH' }, hosts: [tlsHost(`127.0.0.1:${portOf(other)}`)] },
            // No upstream CA: the relay cannot verify this server, so it must send it nothing.
            {
              env: 'UNVERIFIED_TOKEN',
              from: { env: 'PATH' },
              hosts: [{ host: `127.0.0.1:${portOf(unverified)}`, terminateTls: true }],
            },
          ],
        },
      })) as LocalSandbox;
    });

    afterAll(async () => {
      await sandbox?.close();
      api?.close();
      other?.close();
      unverified?.close();
      delete process.env.AGENTBOX_TEST_TLS_TOKEN;
      await rm(dir, { recursive: true, force: true });
    });

    const curl = (url: string, variable = 'API_TOKEN') =>
      sandbox.exec(
        `curl -s -S --max-time 10 -w '%{http_code}' -H "Authorization: Bearer $${variable}" "${url}"`,
        { timeoutMs: 20_000 },
      );

    it('is reported enforced, naming the HTTPS hosts', () => {
      expect(sandbox.enforcement.secrets.status).toBe('enforced');
      expect(sandbox.enforcement.secrets.detail).toContain(
        `HTTPS request headers to localhost:${portOf(api)}`,
      );
    });

    it('curl (OpenSSL, through SSL_CERT_FILE) reaches the HTTPS host, which gets the real value', async () => {
      const r = await curl(`https://localhost:${portOf(api)}/v1`);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('ok\n200');
      expect(apiSeen.at(-1)?.headers.authorization).toBe(`Bearer ${token}`);
    });

    it('node (through NODE_EXTRA_CA_CERTS) does too', async () => {
      const script = `require('https').get(process.argv[1], { headers: { authorization: 'Bearer ' + process.env.API_TOKEN } }, (res) => { res.pipe(process.stdout) }).on('error', (e) => { console.error(e.code); process.exit(3) })`;
      const r = await sandbox.exec(['node', '-e', script, `https://localhost:${portOf(api)}/node`], {
        timeoutMs: 20_000,
      });
      expect(r).toMatchObject({ exitCode: 0, stdout: 'ok\n', stderr: '' });
      expect(apiSeen.at(-1)).toMatchObject({ url: '/node', headers: { authorization: `Bearer ${token}` } });
    });

    it('the placeholder sent to another decrypted HTTPS host is refused (403) and logged', async () => {
      const r = await curl(`https://127.0.0.1:${portOf(other)}/steal`);
      expect(r.stdout).toMatch(/403$/);
      expect(otherSeen).toEqual([]);
      await sandbox.egressLogged();
      const lines = (await readFile(log, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toContainEqual(
        expect.objectContaining({
          protocol: 'secret',
          secret: 'API_TOKEN',
          destination: `127.0.0.1:${portOf(other)}`,
        }),
      );
    });

    it('a client that does not trust the sandbox CA fails its handshake, and the relay goes on', async () => {
      // Another CA (the test servers'), valid but not the sandbox's: the handshake with the relay fails.
      await sandbox.writeFile('other-ca.pem', await readFile(join(dir, 'ca.pem')));
      const before = apiSeen.length;
      const refused = await sandbox.exec(
        `curl -s -S --max-time 10 --cacert other-ca.pem https://localhost:${portOf(api)}/x`,
        {
          timeoutMs: 20_000,
        },
      );
      expect(refused.exitCode).toBe(60); // curl: the peer's certificate cannot be verified
      expect(apiSeen.length).toBe(before);
      expect((await curl(`https://localhost:${portOf(api)}/after`)).stdout).toBe('ok\n200');
    });

    it('a server whose certificate the relay cannot verify gets nothing', async () => {
      const r = await curl(`https://127.0.0.1:${portOf(unverified)}/unverified`, 'UNVERIFIED_TOKEN');
      expect(r.exitCode).not.toBe(0);
      expect(unverifiedSeen).toEqual([]);
    });

    it('the sandbox holds only its CA certificate, never a key, and not the real value', async () => {
      const r = await sandbox.exec('ls /run/agentbox; cat /run/agentbox/*; env');
      expect(r.stdout).toContain('egress-ca.pem');
      expect(r.stdout).toContain('BEGIN CERTIFICATE');
      expect(r.stdout).not.toContain('PRIVATE KEY');
      expect(r.stdout).not.toContain(token);
      const write = await sandbox.exec('echo x > /run/agentbox/egress-ca.pem');
      expect(write.exitCode).not.toBe(0);
    });
  },
);
