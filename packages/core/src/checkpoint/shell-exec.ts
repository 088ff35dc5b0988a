/**
 * A StoreExec over one long-lived shell where the tree lives. Each call is a request on the
 * shell's stdin, answered on its stdout and stderr, so the few commands of a checkpoint pay no
 * process start each (a docker exec costs ~40 ms, three or four times per checkpoint).
 *
 * A request: `<nonce> <argc> <stdin bytes>\n`, then each argument as `<bytes>\n<bytes of it>`,
 * then the stdin. The shell runs the command with exactly that stdin, then ends its stdout with
 * `\n<nonce> <exit status>\n` and its stderr with `\n<nonce>\n`. The tree's file names reach
 * the output, but the nonce is drawn for each request here and nothing in the sandbox sees the
 * requests, so no name can end an answer early. Calls run one at a time. A shell that dies, or
 * a call that is aborted, ends the shell; the next call opens a new one.
 */
import { randomBytes } from 'node:crypto';
import { AbortedError, type ErrorContext, SandboxUnavailableError } from '../errors.js';
import type { StoreExec, StoreExecResult } from './exec-store.js';

/** The shell's pipes, as the backend opens them (`/bin/sh -c STORE_SHELL`, where the tree lives). */
export interface ShellPipes {
  readonly stdout: AsyncIterable<Uint8Array>;
  readonly stderr: AsyncIterable<Uint8Array>;
  /** Resolves once the chunk is accepted. */
  write(chunk: Uint8Array): Promise<void>;
  /** End the shell: its pipes closed, its process gone. */
  close(): void;
  /** Settles when the shell has ended, by close() or on its own. */
  readonly ended: Promise<unknown>;
}

// `dd ... iflag=count_bytes,fullblock` reads exactly N bytes of a pipe (`read` takes a line a
// byte at a time); `echo x` keeps an argument's trailing newlines from `$(...)`. The command's
// stdin is drained after it ends, so one that reads less cannot leave bytes for the next request.
/** The request loop, run as `/bin/sh -c STORE_SHELL`. Needs `dd` (GNU or BusyBox). */
export const STORE_SHELL = `while read -r n a m; do
  set --
  while [ $# -lt "$a" ]; do
    read -r l
    v=$(dd bs=65536 count="$l" iflag=count_bytes,fullblock status=none; echo x)
    set -- "$@" "\${v%x}"
  done
  dd bs=65536 count="$m" iflag=count_bytes,fullblock status=none | { "$@"; s=$?; cat >/dev/null; exit "$s"; }
  s=$?
  printf '\\n%s %s\\n' "$n" "$s"
  printf '\\n%s\\n' "$n" >&2
done`;

/** The bytes of a stream up to a marker, taken one answer at a time; what follows is kept. */
class MarkedReader {
  readonly #chunks: AsyncIterator<Uint8Array>;
  #held: Buffer = Buffer.alloc(0);

  constructor(stream: AsyncIterable<Uint8Array>) {
    this.#chunks = stream[Symbol.asyncIterator]();
  }

  /** Everything before `marker` (which is consumed); rejects if the stream ends first. */
  async until(marker: Buffer): Promise<Buffer> {
    const parts: Buffer[] = [];
    let data = this.#held;
    for (;;) {
      const at = data.indexOf(marker);
      if (at >= 0) {
        parts.push(data.subarray(0, at));
        this.#held = data.subarray(at + marker.length);
        return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      }
      // Keep the tail that could be the start of a marker split across chunks.
      const keep = Math.min(data.length, marker.length - 1);
      parts.push(data.subarray(0, data.length - keep));
      const next = await this.#chunks.next();
      if (next.done) throw new Error('the shell ended');
      data = Buffer.concat([data.subarray(data.length - keep), next.value]);
    }
  }
}

interface Shell {
  pipes: ShellPipes;
  stdout: MarkedReader;
  stderr: MarkedReader;
  /** Rejects once the shell has ended: a call in flight then fails at once. */
  gone: Promise<never>;
}

/** One shell; calls go through `exec`, one at a time. */
export class ShellStoreExec {
  readonly #open: () => Promise<ShellPipes>;
  readonly #context: ErrorContext;
  #shell: Promise<Shell> | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(open: () => Promise<ShellPipes>, context: ErrorContext) {
    this.#open = open;
    this.#context = context;
  }

  readonly exec: StoreExec = (argv, opts) => {
    const run = this.#queue.then(() => this.#run(argv, opts.stdin, opts.signal));
    this.#queue = run.catch(() => {});
    return run;
  };

  /** End the shell (the next call opens another). */
  close(): void {
    const shell = this.#shell;
    this.#shell = undefined;
    void shell?.then(({ pipes }) => pipes.close()).catch(() => {});
  }

  async #run(
    argv: readonly string[],
    stdin: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<StoreExecResult> {
    if (signal?.aborted) throw new AbortedError('aborted', this.#context);
    if (!this.#shell) {
      const shell = this.#open().then((pipes) => {
        // One that ends between calls (its container restarted, say) is not used again.
        void pipes.ended
          .finally(() => {
            if (this.#shell === shell) this.#shell = undefined;
          })
          .catch(() => {});
        const gone = pipes.ended.then(
          () => Promise.reject(new Error('the shell ended')),
          (error) => Promise.reject(error),
        );
        gone.catch(() => {});
        return {
          pipes,
          stdout: new MarkedReader(pipes.stdout),
          stderr: new MarkedReader(pipes.stderr),
          gone,
        };
      });
      this.#shell = shell;
    }
    const shell = await this.#shell.catch((error) => {
      this.#shell = undefined;
      throw error;
    });
    const nonce = randomBytes(16).toString('hex');
    const input = stdin ?? new Uint8Array(0);
    const head = [Buffer.from(`${nonce} ${argv.length} ${input.length}\n`)];
    for (const arg of argv) {
      const bytes = Buffer.from(arg, 'utf8');
      head.push(Buffer.from(`${bytes.length}\n`), bytes);
    }
    const onAbort = () => this.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const answer = Promise.all([
        shell.stdout
          .until(Buffer.from(`\n${nonce} `))
          .then(async (out) => [out, await shell.stdout.until(Buffer.from('\n'))] as const),
        shell.stderr.until(Buffer.from(`\n${nonce}\n`)),
        (async () => {
          await shell.pipes.write(Buffer.concat(head));
          if (input.length > 0) await shell.pipes.write(input);
        })(),
      ]);
      answer.catch(() => {});
      const [[stdout, status], stderr] = await Promise.race([answer, shell.gone]);
      const exitCode = Number(status.toString('utf8'));
      if (!Number.isInteger(exitCode)) throw new Error(`the shell answered a status of ${status}`);
      return { exitCode, stdout, stderr };
    } catch (error) {
      this.close();
      if (signal?.aborted) throw new AbortedError('aborted', { ...this.#context, cause: error });
      throw new SandboxUnavailableError(`the checkpoint shell failed: ${(error as Error).message}`, {
        ...this.#context,
        cause: error,
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
