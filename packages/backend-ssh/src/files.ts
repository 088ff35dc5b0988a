/**
 * Files over the connection's SFTP session, streamed with a few requests in flight (memory
 * stays bounded whatever the size). SFTP status codes map to typed errors in one table.
 */
import { posix } from 'node:path';
import {
  AbortedError,
  AgentboxError,
  InvalidArgumentError,
  IsADirectoryError,
  NotFoundError,
  OutputLimitError,
  PermissionDeniedError,
  SandboxUnavailableError,
  UnsupportedError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import type { Attributes, SFTPWrapper, Stats } from 'ssh2';
import type { SshConnection } from './connection.js';

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7). */
const STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

/** Bytes per read or write request, and requests kept in flight (OpenSSH's sftp client uses the same). */
const CHUNK_BYTES = 32 * 1024;
const WINDOW = 64;

/** Turn an SFTP failure into a typed error. `FAILURE` says nothing on its own: callers check with stat. */
export function sftpError(error: unknown, context: ErrorContext): AgentboxError {
  if (error instanceof AgentboxError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = `${(error as Error)?.message ?? String(error)}: ${context.subject ?? ''}`.trim();
  const ctx = { ...context, cause: error };
  switch (code) {
    case STATUS.NO_SUCH_FILE:
      return new NotFoundError(message, ctx);
    case STATUS.PERMISSION_DENIED:
      return new PermissionDeniedError(message, ctx);
    case STATUS.BAD_MESSAGE:
      return new InvalidArgumentError(message, ctx);
    case STATUS.NO_CONNECTION:
    case STATUS.CONNECTION_LOST:
      return new SandboxUnavailableError(message, ctx);
    case STATUS.OP_UNSUPPORTED:
      return new UnsupportedError(message, ctx);
    default:
      return new AgentboxError(message, ctx);
  }
}

const call = <T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    try {
      fn((err, value) => (err ? reject(err) : resolve(value)));
    } catch (error) {
      reject(error);
    }
  });

const stat = (sftp: SFTPWrapper, path: string) => call<Stats>((cb) => sftp.stat(path, cb));
const closeHandle = (sftp: SFTPWrapper, handle: Buffer) =>
  call<void>((cb) => sftp.close(handle, (err) => cb(err, undefined)));

export class RemoteFiles {
  readonly #conn: SshConnection;
  readonly #context: ErrorContext;

  constructor(conn: SshConnection, context: ErrorContext) {
    this.#conn = conn;
    this.#context = context;
  }

  /** Read a whole file, refusing (before moving any data) one larger than `maxBytes`. */
  async read(path: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const ctx = { ...this.#context, operation: 'readFile', subject: path };
    const { sftp, link } = await this.#conn.sftp(signal);
    try {
      const st = await stat(sftp, path);
      if (st.isDirectory()) throw new IsADirectoryError(`${path} is a directory`, ctx);
      if (st.size > maxBytes)
        throw new OutputLimitError(
          `${path} is ${st.size} bytes, over the ${maxBytes}-byte read limit`,
          maxBytes,
          st.size,
          ctx,
        );
      const handle = await call<Buffer>((cb) => sftp.open(path, 'r', cb));
      try {
        return await readAll(sftp, handle, maxBytes, signal, ctx);
      } finally {
        await closeHandle(sftp, handle).catch(() => {});
      }
    } catch (error) {
      throw sftpError(this.#conn.failure(link, error, `reading ${path}`, ctx), ctx);
    }
  }

  /**
   * Write a file: parents created, an existing file truncated. `mode` is applied exactly when
   * given; a new file otherwise gets 0o644 less the server's umask.
   */
  async write(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const ctx = { ...this.#context, operation: 'writeFile', subject: path };
    const { sftp, link } = await this.#conn.sftp(signal);
    try {
      const handle = await this.#openForWrite(sftp, path, ctx);
      let ok = false;
      try {
        await writeAll(sftp, handle, data, signal, ctx);
        if (mode !== undefined)
          await call<void>((cb) => sftp.fchmod(handle, mode, (err) => cb(err, undefined)));
        ok = true;
      } finally {
        const closing = closeHandle(sftp, handle);
        if (ok) await closing;
        else closing.catch(() => {});
      }
    } catch (error) {
      throw sftpError(this.#conn.failure(link, error, `writing ${path}`, ctx), ctx);
    }
  }

  async #openForWrite(sftp: SFTPWrapper, path: string, ctx: ErrorContext): Promise<Buffer> {
    const open = () => call<Buffer>((cb) => sftp.open(path, 'w', { mode: 0o644 } as Attributes, cb));
    try {
      return await open();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === STATUS.NO_SUCH_FILE) {
        await this.mkdirp(sftp, posix.dirname(path), ctx);
        return open();
      }
      if (code === STATUS.FAILURE) {
        const st = await stat(sftp, path).catch(() => undefined);
        if (st?.isDirectory()) throw new IsADirectoryError(`${path} is a directory`, ctx);
      }
      throw error;
    }
  }

  /** `mkdir -p` over SFTP (new directories get 0o755 less the umask). */
  async mkdirp(sftp: SFTPWrapper, dir: string, ctx: ErrorContext): Promise<void> {
    const st = await stat(sftp, dir).catch((error) => {
      if ((error as { code?: unknown }).code === STATUS.NO_SUCH_FILE) return undefined;
      throw error;
    });
    if (st) {
      if (st.isDirectory()) return;
      throw new NotFoundError(`${dir} is not a directory`, { ...ctx, subject: dir });
    }
    const parent = posix.dirname(dir);
    if (parent !== dir) await this.mkdirp(sftp, parent, ctx);
    try {
      await call<void>((cb) => sftp.mkdir(dir, { mode: 0o755 } as Attributes, (err) => cb(err, undefined)));
    } catch (error) {
      // Created meanwhile by someone else is fine.
      const again = await stat(sftp, dir).catch(() => undefined);
      if (!again?.isDirectory()) throw error;
    }
  }
}

/** Read from offset 0 to EOF (or just past `maxBytes`), WINDOW requests at a time. */
async function readAll(
  sftp: SFTPWrapper,
  handle: Buffer,
  maxBytes: number,
  signal: AbortSignal | undefined,
  ctx: ErrorContext,
): Promise<Uint8Array> {
  const limit = maxBytes + 1; // one byte more than allowed proves the file grew past the limit
  const pieces: Buffer[] = [];
  let total = 0;
  let next = 0;
  let eof = false;
  const inflight: Promise<Buffer>[] = [];
  const issue = () => {
    const position = next;
    const length = Math.min(CHUNK_BYTES, limit - position);
    next += length;
    inflight.push(readExactly(sftp, handle, position, length));
  };
  while (!eof && total < limit) {
    while (inflight.length < WINDOW && next < limit) issue();
    const piece = await inflight.shift()!;
    if (signal?.aborted) throw new AbortedError('aborted', { ...ctx, cause: signal.reason });
    pieces.push(piece);
    total += piece.length;
    if (piece.length < CHUNK_BYTES) eof = true;
  }
  // Requests issued past the end answer with EOF; let them settle.
  await Promise.allSettled(inflight);
  const data = Buffer.concat(pieces, total);
  return total > limit ? data.subarray(0, limit) : data;
}

/** Read `length` bytes at `position`, fewer only at the end of the file. */
async function readExactly(
  sftp: SFTPWrapper,
  handle: Buffer,
  position: number,
  length: number,
): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = await call<number>((cb) =>
      sftp.read(handle, buffer, got, length - got, position + got, (err, bytesRead) => cb(err, bytesRead)),
    );
    if (n === 0) break;
    got += n;
  }
  return got === length ? buffer : buffer.subarray(0, got);
}

/** Write the chunks in order, WINDOW requests in flight; the first failure stops it. */
async function writeAll(
  sftp: SFTPWrapper,
  handle: Buffer,
  data: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  ctx: ErrorContext,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let failed: unknown;
  let position = 0;
  for await (const chunk of data) {
    for (let offset = 0; offset < chunk.length; offset += CHUNK_BYTES) {
      if (signal?.aborted) failed ??= new AbortedError('aborted', { ...ctx, cause: signal.reason });
      if (failed !== undefined) break;
      while (inflight.size >= WINDOW) await Promise.race(inflight);
      if (failed !== undefined) break;
      const piece = Buffer.from(
        chunk.buffer,
        chunk.byteOffset + offset,
        Math.min(CHUNK_BYTES, chunk.length - offset),
      );
      const at = position;
      position += piece.length;
      const request: Promise<void> = call<void>((cb) =>
        sftp.write(handle, piece, 0, piece.length, at, (err) => cb(err, undefined)),
      ).then(
        () => {
          inflight.delete(request);
        },
        (error) => {
          inflight.delete(request);
          failed ??= error;
        },
      );
      inflight.add(request);
    }
    if (failed !== undefined) break;
  }
  await Promise.all(inflight);
  if (failed !== undefined) throw failed;
}
