/**
 * Secrets in core's egress kit, without a sandbox: how values are read and placeholders made,
 * and what the relay's filter does to the bytes a sandbox sends (swap for the secret's hosts,
 * refuse elsewhere, even when the placeholder is cut across chunks), and the redaction.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadSecrets,
  loadTlsTermination,
  parseEgressAllowlist,
  redactSecrets,
  SandboxCa,
  type SecretBinding,
  SecretFilter,
  secretsStatus,
} from '../src/backend.js';
import type { SecretRefusal } from '../src/egress/secret-filter.js';
import { PolicySchema } from '../src/index.js';

const context = { backend: 'test' };
const entries = parseEgressAllowlist(['api.example:80', 'other.example:80'], 'test', context);
const secretsOf = (secrets: unknown) => PolicySchema.parse({ secrets }).secrets!;

/** Run `chunks` through a filter for `destination`; what came out, and any refusal. */
async function filtered(
  bindings: readonly SecretBinding[],
  destination: string,
  chunks: readonly string[],
): Promise<{ out: string; refusal: SecretRefusal | undefined }> {
  let refusal: SecretRefusal | undefined;
  const filter = new SecretFilter({ destination, secrets: bindings, onRefused: (r) => (refusal = r) });
  const out: Buffer[] = [];
  filter.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => filter.once('end', resolve));
  for (const c of chunks) filter.write(Buffer.from(c, 'latin1'));
  filter.end();
  await ended;
  return { out: Buffer.concat(out).toString('latin1'), refusal };
}

describe('loadSecrets', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentbox-secrets-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads from a file (one trailing newline dropped) and from this process environment; placeholders differ per load', async () => {
    await writeFile(join(dir, 'token'), 'file-value\n');
    process.env.AGENTBOX_TEST_SECRET = 'env-value';
    const secrets = secretsOf([
      { env: 'A', from: { file: join(dir, 'token') }, hosts: ['api.example:80'] },
      { env: 'B', from: { env: 'AGENTBOX_TEST_SECRET' }, hosts: ['API.example:80'] },
    ]);
    const [a, b] = await loadSecrets(secrets, entries, 'test', context);
    expect(a!.value.toString()).toBe('file-value');
    expect(b!.value.toString()).toBe('env-value');
    expect(b!.hosts.has('api.example:80')).toBe(true);
    expect(a!.placeholder).toMatch(/^agentbox-secret-[0-9a-f]{48}$/);
    const [again] = await loadSecrets(secrets, entries, 'test', context);
    expect(again!.placeholder).not.toBe(a!.placeholder);
  });

  it('refuses with typed errors: a host off the allowlist, TLS termination, a missing or unusable value', async () => {
    const load = (secret: unknown) => loadSecrets(secretsOf([secret]), entries, 'test', context);
    await expect(
      load({ env: 'A', from: { env: 'PATH' }, hosts: ['nowhere.example:80'] }),
    ).rejects.toMatchObject({
      code: 'POLICY_NOT_ENFORCEABLE',
    });
    await expect(
      load({ env: 'A', from: { env: 'PATH' }, hosts: [{ host: 'api.example:80', terminateTls: true }] }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    await expect(
      load({ env: 'A', from: { env: 'AGENTBOX_NO_SUCH_VARIABLE' }, hosts: ['api.example:80'] }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      load({ env: 'A', from: { file: join(dir, 'missing') }, hosts: ['api.example:80'] }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    process.env.AGENTBOX_TEST_SECRET_CRLF = 'a\r\nX-Injected: 1';
    await expect(
      load({ env: 'A', from: { env: 'AGENTBOX_TEST_SECRET_CRLF' }, hosts: ['api.example:80'] }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('reports TLS hosts as not enforced, so strict mode refuses them before any value is read', () => {
    const status = secretsStatus(
      secretsOf([{ env: 'A', from: { env: 'X' }, hosts: [{ host: 'api.example:443', terminateTls: true }] }]),
      'allowlist',
    );
    expect(status.status).toBe('not-supported');
    expect(status.detail).toContain('TLS termination');
  });

  it('on a backend that terminates TLS: TLS hosts are accepted and reported, with a CA of the sandbox that signs a leaf per host', async () => {
    const secrets = secretsOf([
      { env: 'A', from: { env: 'PATH' }, hosts: [{ host: 'api.example:80', terminateTls: true }] },
    ]);
    const [binding] = await loadSecrets(secrets, entries, 'test', context, { terminatesTls: true });
    expect(binding!.hosts.has('api.example:80')).toBe(true);
    const status = secretsStatus(secrets, 'allowlist', { terminatesTls: true });
    expect(status.status).toBe('enforced');
    expect(status.detail).toContain('HTTPS request headers to api.example:80');
    const tls = (await loadTlsTermination(secrets, 'abx-test', context))!;
    expect([...tls.hosts.keys()]).toEqual(['api.example:80']);
    const ca = new X509Certificate(tls.ca.certificatePem);
    expect(ca.ca).toBe(true);
    for (const host of ['api.example', '127.0.0.1', '::1']) {
      const leaf = new X509Certificate(tls.ca.leafFor(host).certificatePem);
      expect(leaf.ca).toBe(false);
      expect(leaf.checkIssued(ca)).toBe(true);
      expect(leaf.verify(ca.publicKey)).toBe(true);
      expect(host.includes('.') && !/^\d/.test(host) ? leaf.checkHost(host) : leaf.checkIP(host)).toBe(host);
    }
    // Another sandbox's CA does not vouch for this one's leaves.
    const other = new X509Certificate(new SandboxCa('abx-other').certificatePem);
    expect(new X509Certificate(tls.ca.leafFor('api.example').certificatePem).verify(other.publicKey)).toBe(
      false,
    );
    await expect(
      loadTlsTermination(
        secretsOf([
          {
            env: 'A',
            from: { env: 'PATH' },
            hosts: [{ host: 'api.example:80', terminateTls: true, upstreamCa: join(dir, 'missing.pem') }],
          },
        ]),
        'abx-test',
        context,
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('SecretFilter', () => {
  const token: SecretBinding = {
    env: 'TOKEN',
    placeholder: 'agentbox-secret-aaaa',
    value: Buffer.from('real-token'),
    hosts: new Set(['api.example:80']),
    inRequestLine: false,
  };
  const key: SecretBinding = {
    ...token,
    env: 'KEY',
    placeholder: 'agentbox-secret-bbbb',
    value: Buffer.from('real-key'),
    inRequestLine: true,
  };
  const both = [token, key];

  it('swaps placeholders in headers for their hosts, in the request line only when asked, and closes after one request', async () => {
    const { out, refusal } = await filtered(both, 'api.example:80', [
      'GET /x?t=agentbox-secret-aaaa&k=agentbox-secret-bbbb HTTP/1.1\r\nHost: api.example\r\n',
      'Authorization: Bearer agentbox-sec',
      'ret-aaaa\r\nConnection: keep-alive\r\n\r\nbody agentbox-secret-aaaa',
    ]);
    expect(refusal).toBeUndefined();
    expect(out).toBe(
      'GET /x?t=agentbox-secret-aaaa&k=real-key HTTP/1.1\r\nHost: api.example\r\nAuthorization: Bearer real-token\r\nConnection: close\r\n\r\nbody agentbox-secret-aaaa',
    );
  });

  it('refuses a request carrying a placeholder to a host not allowed for it, before any byte goes on', async () => {
    const { out, refusal } = await filtered(both, 'other.example:80', [
      'POST / HTTP/1.1\r\nX-Key: agentbox-secret-bbbb\r\n\r\n',
    ]);
    expect(out).toBe('');
    expect(refusal?.secret.env).toBe('KEY');
    expect(refusal?.reply?.toString()).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('cuts a non-HTTP stream (or a body) where a forbidden placeholder shows up, even split across chunks', async () => {
    const raw = await filtered(both, 'other.example:80', [
      '\x16\x03\x01 hello agentbox-se',
      'cret-aaaa more',
    ]);
    expect(raw.refusal?.secret.env).toBe('TOKEN');
    expect(raw.refusal?.reply).toBeUndefined();
    expect(raw.out).not.toContain('agentbox-secret');
    const body = await filtered(both, 'other.example:80', [
      'POST / HTTP/1.1\r\nContent-Length: 30\r\n\r\n',
      'x agentbox-secret-',
      'bbbb',
    ]);
    expect(body.refusal?.secret.env).toBe('KEY');
    expect(body.out).not.toContain('bbbb');
  });

  it('passes everything unchanged when no placeholder is in it', async () => {
    const { out, refusal } = await filtered(both, 'other.example:80', ['SSH-2.0-x\r\n', 'binary \x00\xff']);
    expect(refusal).toBeUndefined();
    expect(out).toBe('SSH-2.0-x\r\nbinary \x00\xff');
  });

  it('redacts known values in any letter case', () => {
    expect(redactSecrets('lookup of REAL-TOKEN.evil.example', both)).toBe(
      'lookup of [secret TOKEN].evil.example',
    );
  });
});
