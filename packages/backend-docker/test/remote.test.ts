/**
 * Reaching a daemon elsewhere, as DOCKER_HOST and its companions say (read once at open):
 * ssh://user@host, and tcp:// with TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH. Only ports on
 * 127.0.0.1 where nothing listens are dialled: the tests check which transport was chosen.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDocker, dockerEnv, pingDaemon } from '../src/client.js';
import { DockerConnectionSchema } from '../src/config.js';

const context = { backend: 'docker', operation: 'open' };
const defaults = DockerConnectionSchema.parse({});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let certs: string;
beforeAll(async () => {
  certs = await mkdtemp(join(tmpdir(), 'agentbox-docker-certs-'));
});
afterAll(() => rm(certs, { recursive: true, force: true }));

describe('a remote Docker daemon', () => {
  it('DOCKER_HOST=ssh://user@host goes over ssh; an unreachable one is SANDBOX_UNAVAILABLE naming it', async () => {
    const port = await closedPort();
    const client = connectDocker(
      defaults,
      dockerEnv({ DOCKER_HOST: `ssh://builder@127.0.0.1:${port}` }),
      context,
    );
    expect(client.address).toBe(`ssh://builder@127.0.0.1:${port}`);
    expect((client.docker.modem as unknown as { protocol: string }).protocol).toBe('ssh');
    const error = await pingDaemon(client, 5_000, context).catch((e) => e);
    expect(error.code).toBe('SANDBOX_UNAVAILABLE');
    expect(error.message).toContain(
      `cannot reach the Docker daemon at ssh://builder@127.0.0.1:${port} (ECONNREFUSED)`,
    );
  });

  it('DOCKER_TLS_VERIFY makes a tcp:// host TLS, with the certificates in DOCKER_CERT_PATH', async () => {
    for (const name of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(certs, name), `${name} text`);
    const port = await closedPort();
    const env = dockerEnv({
      DOCKER_HOST: `tcp://127.0.0.1:${port}`,
      DOCKER_TLS_VERIFY: '1',
      DOCKER_CERT_PATH: certs,
    });
    const client = connectDocker(defaults, env, context);
    expect(client.address).toBe(`https://127.0.0.1:${port}`);
    const modem = client.docker.modem as unknown as {
      protocol: string;
      ca: unknown;
      cert: string;
      key: string;
    };
    expect([modem.protocol, modem.cert, modem.key]).toEqual(['https', 'cert.pem text', 'key.pem text']);
    expect(String(modem.ca)).toContain('ca.pem text');
  });

  it('TLS with a DOCKER_CERT_PATH that lacks a file is INVALID_ARGUMENT naming what is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'agentbox-docker-nocerts-'));
    try {
      await writeFile(join(empty, 'ca.pem'), 'x');
      const env = dockerEnv({ DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_CERT_PATH: empty });
      const error = (() => {
        try {
          connectDocker(defaults, env, context);
        } catch (e) {
          return e as { code: string; message: string };
        }
      })();
      expect(error?.code).toBe('INVALID_ARGUMENT');
      expect(error?.message).toContain(
        `TLS to the Docker daemon needs ca.pem, cert.pem and key.pem in ${empty}; found ca.pem`,
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('the config wins over DOCKER_HOST', () => {
    const client = connectDocker(
      DockerConnectionSchema.parse({ host: 'tcp://127.0.0.1:1' }),
      dockerEnv({ DOCKER_HOST: 'ssh://someone@elsewhere' }),
      context,
    );
    expect(client.address).toBe('tcp://127.0.0.1:1');
  });
});
