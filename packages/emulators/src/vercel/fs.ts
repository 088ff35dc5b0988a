/**
 * The file endpoints of a Vercel session, on its container, as the sandbox's default user (so
 * permission checks apply): `fs/write` takes a gzip-compressed tar of regular files extracted
 * under `x-cwd`, `fs/read` answers the bytes as `application/octet-stream` (404 when missing),
 * `fs/mkdir` makes one directory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { posix } from 'node:path';
import { PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type Docker from 'dockerode';
import { extract } from 'tar-stream';
import { collect, runInContainer, startInContainer } from '../docker.js';
import { DOWNLOAD_SCRIPT, fileFailure, UPLOAD_SCRIPT } from '../files.js';
import { HttpFailure } from '../http.js';

/** Absolute path of `path` (relative to `cwd`, itself relative to the session's cwd). */
export function resolvePath(sessionCwd: string, path: unknown, cwd: unknown): string {
  if (typeof path !== 'string' || path === '' || path.includes('\0'))
    throw new HttpFailure(400, 'path must be a non-empty string', 'bad_request');
  const base = typeof cwd === 'string' && cwd !== '' ? posix.resolve(sessionCwd, cwd) : sessionCwd;
  return posix.resolve(base, path);
}

export async function writeTar(container: Docker.Container, req: IncomingMessage): Promise<void> {
  if (req.headers['content-type'] !== 'application/gzip')
    throw new HttpFailure(
      400,
      'fs/write takes a gzip-compressed tar (content-type application/gzip)',
      'bad_request',
    );
  const header = req.headers['x-cwd'];
  const root = typeof header === 'string' && header.startsWith('/') ? header : '/';
  const unpack = extract();
  const failures: HttpFailure[] = [];
  unpack.on('entry', (entry, stream, next) => {
    void (async () => {
      const path = posix.resolve(root, entry.name);
      if (entry.type !== 'file') {
        stream.resume();
        failures.push(
          new HttpFailure(400, `${entry.name}: only regular files can be written`, 'bad_request'),
        );
        return;
      }
      const input = new PassThrough();
      stream.pipe(input);
      const written = await runInContainer(container, ['sh', '-c', UPLOAD_SCRIPT, path], { stdin: input });
      if (written.exitCode !== 0) {
        failures.push(fileFailure(written.stderr, path));
        return;
      }
      const mode = ((entry.mode ?? 0o644) & 0o7777).toString(8);
      const chmod = await runInContainer(container, ['chmod', mode, '--', path]);
      if (chmod.exitCode !== 0) failures.push(fileFailure(chmod.stderr, path));
    })()
      .catch((error: Error) => failures.push(new HttpFailure(500, error.message)))
      .finally(() => next());
  });
  await new Promise<void>((resolve, reject) => {
    const gunzip = createGunzip();
    gunzip.on('error', () => reject(new HttpFailure(400, 'the body is not gzip', 'bad_request')));
    unpack.on('error', (error) =>
      reject(new HttpFailure(400, `the body is not a tar: ${error.message}`, 'bad_request')),
    );
    unpack.on('finish', resolve);
    req.pipe(gunzip).pipe(unpack);
  });
  if (failures.length > 0) throw failures[0];
}

export async function readToResponse(
  container: Docker.Container,
  path: string,
  res: ServerResponse,
): Promise<void> {
  const started = await startInContainer(container, ['sh', '-c', DOWNLOAD_SCRIPT, path]);
  const stderr = collect(started.stderr);
  // The first byte (or the end) decides between the bytes and an error answer.
  const first = await new Promise<Buffer | null>((resolve) => {
    started.stdout.once('data', (chunk: Buffer) => {
      started.stdout.pause();
      resolve(chunk);
    });
    started.stdout.once('end', () => resolve(null));
  });
  if (first === null) {
    const exitCode = await started.exit;
    if (exitCode !== 0) throw fileFailure(await stderr, path);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  res.write(first);
  started.stdout.resume();
  for await (const chunk of started.stdout) {
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
  }
  await started.exit;
  res.end();
}

export async function makeDirectory(container: Docker.Container, path: string): Promise<void> {
  const made = await runInContainer(container, ['mkdir', '--', path]);
  if (made.exitCode !== 0) {
    const text = made.stderr.toString('utf8');
    if (/File exists/i.test(text)) throw new HttpFailure(400, `${path}: already exists`, 'file_exists');
    throw fileFailure(made.stderr, path);
  }
}
