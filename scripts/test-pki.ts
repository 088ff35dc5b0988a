/**
 * For the TLS tests: a CA and a server certificate for localhost and 127.0.0.1, made by the
 * openssl command line in `dir` (a CA nobody else trusts), and an HTTPS server that records
 * what each request carried.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';

export interface TestPki {
  /** The CA's certificate (PEM file): what a client must be told to trust. */
  caFile: string;
  key: Buffer;
  cert: Buffer;
}

export function makeTestPki(dir: string): TestPki {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(
    'req',
    '-x509',
    ...newKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=agentbox test CA',
  );
  run('req', ...newKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'san.cnf',
    '-out',
    'server.pem',
  );
  return {
    caFile: join(dir, 'ca.pem'),
    key: readFileSync(join(dir, 'server.key')),
    cert: readFileSync(join(dir, 'server.pem')),
  };
}

export interface SeenRequest {
  url: string;
  headers: IncomingHttpHeaders;
}

/** An HTTPS server on 127.0.0.1 (a free port) that answers `ok` and records each request in `seen`. */
export async function httpsRecorder(pki: TestPki, seen: SeenRequest[]): Promise<Server> {
  const server = createServer({ key: pki.key, cert: pki.cert }, (req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return server;
}
