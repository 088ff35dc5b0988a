/**
 * Files through Docker's archive API (getArchive and putArchive in archive.ts, the tar in
 * tar.ts), streamed. The daemon reads and writes as root, so first a small check runs as the
 * sandbox user and asks the kernel what that user may do (missing, a directory, permission
 * denied, read-only filesystem), creates missing parent directories as that user and resolves
 * symlinks. Written files belong to the sandbox user. A small file is one command on the fast
 * path. A write of unknown length, and paths the daemon cannot see (tmpfs mounts such as /tmp,
 * /proc, /dev), go through an exec instead (`cat`, streamed over stdin/stdout).
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import {
  AbortedError,
  AgentboxError,
  IsADirectoryError,
  NoSpaceError,
  NotFoundError,
  OutputLimitError,
  PermissionDeniedError,
} from '@agentbox/core';
import { type ErrorContext, fromErrno } from '@agentbox/core/backend';
import type Docker from 'dockerode';
import { putArchiveOverSocket, readArchiveFileFromStream, readArchiveFileOverSocket } from './archive.js';
import { type DockerClient, dockerError, statusOf } from './client.js';
import { type CollectedExec, runExec } from './exec.js';
import type { PauseGate } from './gate.js';
import { gather, tarFile, tarFileLength } from './tar.js';

/** Up to this much of a stream of unknown length is held in memory, to learn its size; a longer one goes through exec. */
const HELD_BYTES = 8 * 1024 * 1024;

const READ_CHECK = `p=$1
if [ -d "$p" ]; then echo EISDIR; exit 0; fi
if [ ! -e "$p" ]; then
  a=\${p%/*}
  while [ -n "$a" ] && [ ! -e "$a" ]; do a=\${a%/*}; done
  [ -n "$a" ] || a=/
  if [ ! -d "$a" ]; then echo ENOTDIR; elif [ ! -x "$a" ]; then echo EACCES; else echo ENOENT; fi
  exit 0
fi
if [ ! -r "$p" ]; then echo EACCES; exit 0; fi
if [ ! -f "$p" ]; then echo EINVAL; exit 0; fi
printf 'OK %s ' "$(stat -L -c %s -- "$p")"
readlink -f -- "$p"`;

const WRITE_CHECK = `p=$1
if [ -d "$p" ]; then echo EISDIR; exit 0; fi
d=\${p%/*}; [ -n "$d" ] || d=/
if [ ! -d "$d" ] && ! mkdir -p -- "$d" 2>/dev/null; then
  a=$d
  while [ -n "$a" ] && [ ! -e "$a" ]; do a=\${a%/*}; done
  [ -n "$a" ] || a=/
  if [ ! -d "$a" ]; then echo ENOTDIR; else echo EACCES; fi
  exit 0
fi
if [ -e "$p" ]; then
  if [ ! -f "$p" ]; then echo EINVAL; exit 0; fi
  if [ ! -w "$p" ]; then echo EACCES; exit 0; fi
  r=$(readlink -f -- "$p"; echo x); r=\${r%??}
  q=\${r%/*}; [ -n "$q" ] || q=/
  w=0; if [ -w "$q" ] && [ -x "$q" ]; then w=1; fi
  printf 'OK %s %s %s\\n' "$(stat -L -c %a -- "$p")" "$w" "$r"
  exit 0
fi
if [ ! -w "$d" ] || [ ! -x "$d" ]; then echo EACCES; exit 0; fi
cd -P -- "$d" || { echo EACCES; exit 0; }
printf 'OK - 1 %s\\n' "$(pwd -P)/\${p##*/}"`;

const EXEC_WRITE = 'cat > "$1" && { [ "$2" = - ] || chmod "$2" "$1"; }';

/**
 * A small file in one command (no archive call): READ_CHECK's verdict on stderr and, when it is
 * OK and the file is at most $2 bytes, the content on stdout. A larger file gets only the verdict.
 */
const READ_SMALL = `check() {
${READ_CHECK}
}
v=$(check "$1")
case $v in
"OK "*)
  s=\${v#OK }; s=\${s%% *}
  if [ "$s" -le "$2" ]; then printf '%s\\n' "$v" >&2; exec cat -- "\${v#OK $s }"; fi ;;
esac
printf '%s' "$v" >&2`;

/**
 * A small file written in one command: WRITE_CHECK, then the content, given as a printf format
 * ($3: every byte but plain ASCII as an octal escape, see printfFormat), and the mode ($2, or -
 * to keep an existing file's, 644 for a new one). Stderr says OK or why not.
 */
const WRITE_SMALL = `check() {
${WRITE_CHECK}
}
v=$(check "$1")
case $v in "OK "*) ;; *) printf '%s' "$v" >&2; exit 0 ;; esac
e=\${v#OK }; r=\${e#* }; r=\${r#* }; e=\${e%% *}
m=$2; if [ "$m" = - ]; then if [ "$e" = - ]; then m=644; else m=$e; fi; fi
# BusyBox's printf says nothing when its write fails: cat, on a second try, says why.
printf "$3" > "$r" 2>/dev/null || { printf "$3" | cat > "$r" || exit 1; }
[ "$m" = "$e" ] || chmod "$m" "$r" || exit 1
printf OK >&2`;

/** Data sent to a command's stdin goes in blocks of about this size (fewer, larger writes to the socket). */
const EXEC_GATHER_BYTES = 1024 * 1024;
/**
 * Data written straight to the daemon's socket passes in chunks of at least this size as it
 * comes (a file stream's 64 KiB chunks, uncopied: gathering them into 1 MiB blocks cost 10%
 * of an upload's time); smaller ones are gathered, not sent a syscall each.
 */
const SOCKET_GATHER_BYTES = 64 * 1024;
/** Files up to this size are read in one command (READ_SMALL). */
const SMALL_READ_BYTES = 1024 * 1024;
/** Content whose printf format is up to this long is written in one command (an argument's limit is 128 KiB). */
const SMALL_WRITE_FORMAT = 96 * 1024;

/**
 * Bytes as a printf format that prints exactly them: printable ASCII as itself but for `%` and
 * `\` (and a leading `-`), every other byte as a three-digit octal escape (NUL included:
 * dash, bash and BusyBox print it). Undefined once it would be longer than `limit`.
 */
export function printfFormat(data: Uint8Array, limit: number): string | undefined {
  if (data.length > limit) return undefined;
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    const plain = b >= 0x20 && b < 0x7f && b !== 0x25 && b !== 0x5c && !(i === 0 && b === 0x2d);
    const part = plain ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`;
    length += part.length;
    if (length > limit) return undefined;
    parts.push(part);
  }
  return parts.join('');
}

export interface FilesTarget {
  container: Docker.Container;
  context: ErrorContext;
  /** The sandbox user, as exec wants it, and the numeric owner of written files. */
  user: string;
  uid: number;
  gid: number;
  /** Mount points whose contents the archive API cannot see (tmpfs, /proc, /sys, /dev). */
  execOnly: readonly string[];
  /** The container's pause gate: archive calls wait while a checkpoint has it paused. */
  gate?: PauseGate;
  /** Where the daemon is: on a unix socket, archive calls go over it directly (archive.ts). */
  daemon?: Pick<DockerClient, 'address' | 'socketPath'>;
  /**
   * Run a short command as the sandbox user the fastest way there is (a session shell); small
   * files go through it in one command each instead of a check and an archive call.
   */
  run?: (argv: readonly string[], signal: AbortSignal | undefined) => Promise<CollectedExec>;
}

export class DockerFiles {
  constructor(private readonly t: FilesTarget) {}

  async read(path: string, maxBytes: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const context = { ...this.t.context, subject: path };
    let check: string;
    if (this.t.run) {
      const small = Math.min(maxBytes, SMALL_READ_BYTES);
      const r = await this.t.run(['/bin/sh', '-c', READ_SMALL, 'agentbox-read', path, String(small)], signal);
      const verdict = r.stderr.toString('utf8');
      const nl = verdict.indexOf('\n');
      if (r.exitCode === 0 && nl > 0 && verdict.startsWith('OK ')) {
        if (r.stdout.length > maxBytes)
          throw new OutputLimitError(
            `${path} is larger than ${maxBytes} bytes`,
            maxBytes,
            r.stdout.length,
            context,
          );
        return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
      }
      if (r.exitCode !== 0 || verdict === '')
        throw new AgentboxError(`checking ${path} failed (exit ${r.exitCode}): ${verdict.trim()}`, context);
      check = verdict;
    } else check = await this.#check(READ_CHECK, path, signal);
    const match = /^OK (\d+) ([\s\S]*)$/.exec(check);
    if (!match) throw this.#checkError(check, path);
    const size = Number(match[1]);
    const real = match[2]!;
    if (size > maxBytes)
      throw new OutputLimitError(
        `${path} is ${size} bytes, over the limit of ${maxBytes}`,
        maxBytes,
        size,
        context,
      );
    if (this.#execOnly(real)) {
      const r = await this.#userExec(['cat', '--', real], undefined, signal);
      if (r.exitCode !== 0)
        throw new AgentboxError(`cannot read ${path}: ${r.stderr.toString('utf8').trim()}`, context);
      if (r.stdout.length > maxBytes)
        throw new OutputLimitError(
          `${path} is larger than ${maxBytes} bytes`,
          maxBytes,
          r.stdout.length,
          context,
        );
      return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
    }
    const read = { path: real, name: path, maxBytes, signal, context };
    return this.#gated(async () => {
      if (this.t.daemon?.socketPath)
        return readArchiveFileOverSocket(
          this.t.daemon.socketPath,
          this.t.daemon.address,
          this.t.container.id,
          read,
        );
      let response: NodeJS.ReadableStream;
      try {
        response = await this.t.container.getArchive({
          path: real,
          ...(signal ? { abortSignal: signal } : {}),
        });
      } catch (error) {
        if (signal?.aborted) throw new AbortedError('aborted', { ...context, cause: error });
        throw dockerError(error, context);
      }
      return readArchiveFileFromStream(response as Readable, read);
    });
  }

  /**
   * `mode` applies when given; otherwise an existing file keeps its mode and a new one gets 0644.
   * Data of a known size (declared, or up to 8 MiB held to find its end) goes through the
   * archive API as it comes; a longer stream of unknown size through `cat` over exec stdin.
   */
  async write(
    path: string,
    data: AsyncIterable<Uint8Array>,
    mode: number | undefined,
    signal: AbortSignal | undefined,
    size?: number,
  ): Promise<void> {
    if (size !== undefined && size > SMALL_WRITE_FORMAT)
      return this.#writeLarge(path, data, size, mode, signal);
    const context = { ...this.t.context, subject: path };
    const head = await holdHead(data, HELD_BYTES, signal);
    if (head.rest) return this.#writeLarge(path, head.rest, undefined, mode, signal);
    const format = this.t.run ? printfFormat(Buffer.concat(head.held), SMALL_WRITE_FORMAT) : undefined;
    if (format === undefined) return this.#writeLarge(path, head.held, head.size, mode, signal);
    const octal = mode === undefined ? '-' : mode.toString(8);
    const r = await this.t.run!(
      ['/bin/sh', '-c', WRITE_SMALL, 'agentbox-write', path, octal, format],
      signal,
    );
    const verdict = r.stderr.toString('utf8');
    if (r.exitCode === 0 && verdict === 'OK') return;
    if (r.exitCode === 0 && verdict !== '') throw this.#checkError(verdict, path);
    if (/no space left/i.test(verdict))
      throw new NoSpaceError(`cannot write ${path}: ${verdict.trim()}`, context);
    throw new AgentboxError(`cannot write ${path} (exit ${r.exitCode}): ${verdict.trim()}`, context);
  }

  /**
   * A file too large for one command: the check, then the archive API when the size is known
   * (its tar header says it first), else `cat` as the sandbox user (also where the daemon cannot
   * see, or where the user may write the file but not its folder).
   */
  async #writeLarge(
    path: string,
    body: AsyncIterable<Uint8Array> | readonly Uint8Array[],
    size: number | undefined,
    mode: number | undefined,
    signal: AbortSignal | undefined,
  ) {
    const check = await this.#check(WRITE_CHECK, path, signal);
    const match = /^OK (-|[0-7]+) ([01]) ([\s\S]*)$/.exec(check);
    if (!match) throw this.#checkError(check, path);
    const existingMode = match[1] === '-' ? undefined : Number.parseInt(match[1]!, 8);
    const finalMode = mode ?? existingMode ?? 0o644;
    const real = posix.normalize(match[3]!);
    const context = { ...this.t.context, subject: path };
    if (size === undefined || match[2] !== '1' || this.#execOnly(real)) {
      const octal = mode === undefined && existingMode !== undefined ? '-' : finalMode.toString(8);
      const r = await this.#userExec(
        ['/bin/sh', '-c', EXEC_WRITE, 'agentbox-write', real, octal],
        gather(asAsync(body), EXEC_GATHER_BYTES),
        signal,
      );
      if (r.exitCode !== 0) {
        const why = r.stderr.toString('utf8').trim();
        if (/no space left/i.test(why)) throw new NoSpaceError(`cannot write ${path}: ${why}`, context);
        throw new AgentboxError(`cannot write ${path}: ${why}`, context);
      }
      return;
    }
    // The daemon writes as root and removes the old file first: under a temporary name, a write
    // that fails midway leaves the file as it was (and no root-owned remnant), and a rename by
    // the sandbox user puts a whole one in place.
    const part = posix.join(posix.dirname(real), `.agentbox-${randomBytes(6).toString('hex')}.part`);
    try {
      await this.#putFile(part, body, size, finalMode, signal, context);
      const moved = await this.#runAsUser(['mv', '-f', '--', part, real], signal);
      if (moved.exitCode !== 0)
        throw new AgentboxError(`cannot write ${path}: ${moved.stderr.toString('utf8').trim()}`, context);
    } catch (error) {
      await this.#runAsUser(['rm', '-f', '--', part], undefined).catch(() => undefined);
      throw error;
    }
  }

  /** One file of a known size through the archive API, streamed into its tar entry as it comes. */
  async #putFile(
    real: string,
    body: AsyncIterable<Uint8Array> | readonly Uint8Array[],
    size: number,
    mode: number,
    signal: AbortSignal | undefined,
    context: ErrorContext,
  ): Promise<void> {
    const header = {
      name: posix.basename(real),
      size,
      mode,
      uid: this.t.uid,
      gid: this.t.gid,
      mtime: new Date(),
    };
    // A failing feed aborts the request (an error on the piped body alone can leave it waiting).
    let fed: { error: unknown } | undefined;
    const cut = new AbortController();
    const socketPath = this.t.daemon?.socketPath;
    const blocks = (async function* () {
      try {
        for await (const block of tarFile(
          header,
          asAsync(body),
          socketPath ? SOCKET_GATHER_BYTES : undefined,
        )) {
          if (signal?.aborted) throw new AbortedError('aborted', context);
          yield block;
        }
      } catch (error) {
        fed = { error };
        cut.abort();
        throw error;
      }
    })();
    const dir = posix.dirname(real);
    try {
      await this.#gated(async (): Promise<unknown> => {
        if (socketPath)
          return putArchiveOverSocket(
            socketPath,
            this.t.container.id,
            dir,
            blocks,
            tarFileLength(size),
            signal,
          );
        const tarball = Readable.from(blocks, { objectMode: false });
        tarball.on('error', () => undefined);
        return this.t.container.putArchive(tarball, {
          path: dir,
          noOverwriteDirNonDir: true,
          abortSignal: signal ? AbortSignal.any([signal, cut.signal]) : cut.signal,
        });
      });
    } catch (error) {
      // The caller's data failed (a chunk that is not bytes, a stream's own error): that is the error.
      if (fed) throw fed.error;
      if (signal?.aborted) throw new AbortedError('aborted', { ...context, cause: error });
      if (/no space left/i.test(String((error as Error)?.message)))
        throw new NoSpaceError(`no space left to write ${context.subject}`, { ...context, cause: error });
      if (statusOf(error) === 400)
        throw new IsADirectoryError(`${context.subject} is a directory`, { ...context, cause: error });
      if (statusOf(error) === 403)
        throw new PermissionDeniedError(`cannot write ${context.subject}`, { ...context, cause: error });
      throw dockerError(error, context, this.t.daemon?.address);
    }
    if (fed) throw fed.error;
  }

  /** A short command as the sandbox user: on the fast path when there is one. */
  #runAsUser(argv: readonly string[], signal: AbortSignal | undefined): Promise<CollectedExec> {
    return this.t.run ? this.t.run(argv, signal) : this.#userExec(argv, undefined, signal);
  }

  #gated<T>(fn: () => Promise<T>): Promise<T> {
    return this.t.gate ? this.t.gate.shared(fn) : fn();
  }

  #execOnly(path: string): boolean {
    return this.t.execOnly.some((mount) => path === mount || path.startsWith(`${mount}/`));
  }

  async #check(script: string, path: string, signal: AbortSignal | undefined): Promise<string> {
    const r = await this.#runAsUser(['/bin/sh', '-c', script, 'agentbox-check', path], signal);
    const out = r.stdout.toString('utf8');
    if (r.exitCode !== 0 || out === '')
      throw new AgentboxError(
        `checking ${path} failed (exit ${r.exitCode}): ${r.stderr.toString('utf8').trim()}`,
        {
          ...this.t.context,
          subject: path,
        },
      );
    return out.endsWith('\n') ? out.slice(0, -1) : out;
  }

  #checkError(code: string, path: string): AgentboxError {
    const context = { ...this.t.context, subject: path };
    switch (code) {
      case 'EISDIR':
        return new IsADirectoryError(`${path} is a directory`, context);
      case 'ENOENT':
        return new NotFoundError(`${path} does not exist`, context);
      case 'ENOTDIR':
        return new NotFoundError(`a parent of ${path} is not a directory`, context);
      case 'EACCES':
        return new PermissionDeniedError(`the sandbox user may not access ${path}`, context);
      case 'EINVAL':
        return fromErrno('EINVAL', `${path} is not a regular file`, context);
      default:
        return new AgentboxError(`unexpected answer checking ${path}: ${code.slice(0, 200)}`, context);
    }
  }

  #userExec(
    argv: readonly string[],
    stdin: AsyncIterable<Uint8Array> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<CollectedExec> {
    return runExec(
      { container: this.t.container, context: this.t.context, ...(this.t.gate ? { gate: this.t.gate } : {}) },
      { argv, user: this.t.user, ...(stdin ? { stdin } : {}), ...(signal ? { signal } : {}) },
    );
  }
}

/** The first chunks of a stream, up to `limit` bytes; `rest`, when there is more, replays them and goes on. */
async function holdHead(
  data: AsyncIterable<Uint8Array>,
  limit: number,
  signal: AbortSignal | undefined,
): Promise<{ held: Uint8Array[]; size: number; rest?: AsyncIterable<Uint8Array> }> {
  const iterator = data[Symbol.asyncIterator]();
  const held: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      if (signal?.aborted) throw new AbortedError('aborted');
      const next = await iterator.next();
      if (next.done) return { held, size };
      // The caller's own chunks are held by reference (one big Uint8Array costs nothing extra).
      held.push(next.value);
      size += next.value.length;
      if (size > limit) break;
    }
  } catch (error) {
    await iterator.return?.();
    throw error;
  }
  async function* rest() {
    yield* held;
    let done = false;
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!done) await iterator.return?.();
    }
  }
  return { held, size, rest: rest() };
}

async function* asAsync(
  chunks: AsyncIterable<Uint8Array> | readonly Uint8Array[],
): AsyncGenerator<Uint8Array> {
  yield* chunks;
}
