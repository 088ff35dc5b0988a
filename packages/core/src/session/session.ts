/**
 * One session: a shell opened once in the sandbox, running the runner script, taking one
 * command at a time. A command's stdout and stderr are the session's own streams (no relay,
 * no copy inside the sandbox); the runner's markers say where each command starts and ends.
 */
import {
  AgentboxError,
  type ErrorContext,
  fromErrno,
  InvalidArgumentError,
  SandboxUnavailableError,
  UnsupportedError,
} from '../errors.js';
import { encodeUtf8 } from '../output.js';
import type { RawProcess, StartRequest } from '../process.js';
import { StreamQueue } from '../stream-queue.js';
import {
  commandRequest,
  controlScript,
  exitFromSignal,
  exitFromStatus,
  isKnownSignal,
  killRequest,
  livenessRequest,
  type Marker,
  newNonce,
  type RunnerPrograms,
  runnerScript,
} from './protocol.js';
import { MarkerScanner } from './scanner.js';

/** Which way a command ran: down an open session, or through the backend's plain exec. */
export type ExecPath = 'session' | 'plain';

/** A RawProcess that says which path started it. */
export interface PooledProcess extends RawProcess {
  readonly path: ExecPath;
}

export interface SessionHooks {
  /** The session finished a command and can take another. */
  onIdle(session: Session): void;
  /** The session takes no more commands (used once, output still held, died, closed). */
  onGone(session: Session, lost: boolean): void;
  /** Signal a command's process group from outside (the runner is busy waiting for it). */
  killGroup(pgid: number, signal: string): Promise<void>;
}

type StreamName = 'stdout' | 'stderr';

/** How long a runner that exited may take to deliver the rest of its output before the command fails. */
const EXIT_GRACE_MS = 1_000;

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
    resolve: (value) => {
      d.settled = true;
      resolve(value);
    },
    reject: (error) => {
      d.settled = true;
      reject(error);
    },
    settled: false,
  };
  d.promise.catch(() => {});
  return d;
}

export class Session {
  readonly #shell: RawProcess;
  readonly #programs: RunnerPrograms | undefined;
  readonly #nonce = newNonce();
  readonly #hooks: SessionHooks;
  readonly #context: ErrorContext;
  readonly #ready = deferred<void>();
  readonly #ended = deferred<void>();
  readonly #readySeen = { stdout: false, stderr: false };
  readonly #eof = { stdout: false, stderr: false };
  readonly #pendingKills = new Map<number, Deferred<void>>();
  readonly #pendingChecks = new Map<number, Deferred<number[]>>();
  #state: 'opening' | 'idle' | 'busy' | 'gone' = 'opening';
  #probeOk = false;
  #runnerPid = 0;
  /** Pids of command shells announced (S) before their command was asked for, by sequence number. */
  readonly #waitingPids = new Map<number, number>();
  #seq = 0;
  #current: SessionProcess | undefined;
  #writes: Promise<void> = Promise.resolve();
  #shellClosing: Promise<void> | undefined;
  #exitTimer: NodeJS.Timeout | undefined;
  #lostTimer: NodeJS.Timeout | undefined;

  private constructor(
    shell: RawProcess,
    hooks: SessionHooks,
    context: ErrorContext,
    programs: RunnerPrograms | undefined,
  ) {
    this.#shell = shell;
    this.#programs = programs;
    this.#hooks = hooks;
    this.#context = context;
    void this.#read('stdout');
    void this.#read('stderr');
    shell.exit.then(
      () => this.#onShellExit(),
      () => this.#onShellExit(),
    );
  }

  /**
   * Start the runner in `shell` and wait for its probe; rejects (and closes the shell) if it
   * cannot serve. A control session takes kill requests instead of commands.
   */
  static async open(
    shell: RawProcess,
    hooks: SessionHooks,
    context: ErrorContext,
    timeoutMs: number,
    role: 'command' | 'control' = 'command',
    programs?: RunnerPrograms,
  ): Promise<Session> {
    const session = new Session(shell, hooks, context, programs);
    const timer = setTimeout(
      () =>
        session.#die(new SandboxUnavailableError(`session did not start within ${timeoutMs} ms`, context)),
      timeoutMs,
    );
    try {
      const script =
        role === 'command' ? runnerScript(session.#nonce, programs) : controlScript(session.#nonce);
      // One brace group: the shell parses the whole script before running any of it. busybox sh
      // reads a pipe 1 KiB at a time and runs what it has parsed, so a longer script would say it
      // is ready while its tail is still unread, and the first request would be read as script.
      session.#write(`{\n${script}\n}\n`).catch(() => {});
      await session.#ready.promise;
      session.#state = 'idle';
      return session;
    } catch (error) {
      session.#state = 'gone';
      await session.#closeShell();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  get idle(): boolean {
    return this.#state === 'idle';
  }

  get gone(): boolean {
    return this.#state === 'gone';
  }

  /** The hidden programs this session's runner uses, if any (see RunnerPrograms). */
  get programs(): RunnerPrograms | undefined {
    return this.#programs;
  }

  /** Pid of the runner shell in the sandbox (what the liveness check asks about). */
  get runnerPid(): number {
    return this.#runnerPid;
  }

  /**
   * The runner is known to be gone (the liveness check said so): fail and replace. A runner also
   * ends on its own after a session's last command (one given stdin, or one that left processes
   * behind), and that command's end marker may still be on its way: it gets the same grace as a
   * shell exit before the command is failed.
   */
  lost(): void {
    if (this.#state === 'gone' || this.#lostTimer) return;
    const dead = () => this.#die(new SandboxUnavailableError('the session runner died', this.#context));
    // An idle session with a dead runner goes at once: it must not be handed to the next command.
    if (this.#state !== 'busy') {
      dead();
      return;
    }
    this.#lostTimer = setTimeout(() => {
      if (this.#state !== 'gone' && !this.#current?.exitKnown) dead();
    }, EXIT_GRACE_MS);
    this.#lostTimer.unref?.();
  }

  /** Run one command; the session must be idle. */
  run(req: StartRequest): SessionProcess {
    // The pool hands out idle sessions only: reaching this is a bug in the pool, not the caller's.
    if (this.#state !== 'idle') throw new AgentboxError('session is not idle', this.#context);
    this.#state = 'busy';
    const seq = ++this.#seq;
    const port: SessionPort = {
      send: (mode) =>
        this.#write(commandRequest(seq, mode, this.#nonce, this.#runnerPid, req, this.#programs)),
      writeStdin: (chunk) => this.#write(chunk),
      closeStdin: () => {
        this.#writes = this.#writes.then(() => this.#shell.closeStdin()).catch(() => {});
        return this.#writes;
      },
      killGroup: (pgid, signal) => this.#hooks.killGroup(pgid, signal),
    };
    const proc = new SessionProcess(seq, req, port, this.#context);
    this.#current = proc;
    const pid = this.#waitingPids.get(seq);
    this.#waitingPids.delete(seq);
    if (pid !== undefined) proc.marker('stdout', { type: 'S', seq, fields: [String(pid)] });
    return proc;
  }

  /** Signal a process group (this session serves as the pool's control shell). */
  async signalGroup(signal: string, pgid: number): Promise<void> {
    if (this.#state !== 'idle' && this.#state !== 'busy')
      throw new SandboxUnavailableError('control session is gone', this.#context);
    const id = ++this.#seq;
    const done = deferred<void>();
    this.#pendingKills.set(id, done);
    this.#write(killRequest(id, signal, pgid)).catch(() => {});
    try {
      await done.promise;
    } finally {
      this.#pendingKills.delete(id);
    }
  }

  /** Which of these pids are gone (this session serves as the pool's control shell). */
  async deadOf(pids: readonly number[]): Promise<number[]> {
    if (this.#state !== 'idle' && this.#state !== 'busy')
      throw new SandboxUnavailableError('control session is gone', this.#context);
    const id = ++this.#seq;
    const answer = deferred<number[]>();
    this.#pendingChecks.set(id, answer);
    this.#write(livenessRequest(id, pids)).catch(() => {});
    try {
      return await answer.promise;
    } finally {
      this.#pendingChecks.delete(id);
    }
  }

  /** Stop taking commands and end the shell; a command still running is killed. */
  async close(error: AgentboxError): Promise<void> {
    const current = this.#current;
    this.#state = 'gone';
    if (current && !current.done) {
      const pid = current.pid;
      if (pid !== undefined) await this.#hooks.killGroup(pid, 'SIGKILL').catch(() => {});
      current.fail(error);
    }
    await this.#closeShell();
  }

  #closeShell(): Promise<void> {
    this.#shellClosing ??= this.#endShell().finally(() => this.#ended.resolve());
    return this.#shellClosing;
  }

  /** Resolves once the session's shell is closed (after any output a finished command left behind). */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  async #endShell(): Promise<void> {
    await this.#shell.closeStdin().catch(() => {});
    const exited = await Promise.race([
      this.#shell.exit.then(
        () => true,
        () => true,
      ),
      delay(2_000).then(() => false),
    ]);
    if (!exited) await this.#shell.kill('SIGKILL').catch(() => {});
  }

  #write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === 'string' ? encodeUtf8(data) : data;
    const next = this.#writes.then(() => this.#shell.writeStdin(bytes));
    this.#writes = next.catch((error) => {
      this.#die(new SandboxUnavailableError('session stream broke', { ...this.#context, cause: error }));
    });
    return next;
  }

  async #read(name: StreamName): Promise<void> {
    const scanner = new MarkerScanner(this.#nonce);
    try {
      for await (const chunk of this.#shell[name]) {
        for (const event of scanner.push(chunk)) {
          if (event.kind === 'data') await this.#current?.output(name, event.bytes);
          else this.#onMarker(name, event.marker);
        }
      }
      const rest = scanner.flush();
      if (rest) await this.#current?.output(name, rest);
    } catch {
      // A transport that breaks ends the stream like EOF.
    }
    this.#eof[name] = true;
    this.#onStreamEnd(name);
  }

  #onMarker(name: StreamName, marker: Marker): void {
    const current = this.#current;
    switch (marker.type) {
      case 'B':
        this.#readySeen[name] = true;
        if (name === 'stdout') {
          this.#probeOk = marker.fields[0] === '1';
          this.#runnerPid = Number(marker.fields[1]);
        }
        if (this.#readySeen.stdout && this.#readySeen.stderr) {
          if (this.#probeOk) this.#ready.resolve();
          else
            this.#ready.reject(
              new UnsupportedError(
                'the sandbox has no setsid or no /proc: sessions are not possible',
                this.#context,
              ),
            );
        }
        return;
      case 'K':
        this.#pendingKills.get(marker.seq)?.resolve();
        return;
      case 'W':
        this.#pendingChecks.get(marker.seq)?.resolve(marker.fields.map(Number));
        return;
      case 'S':
        // The shell for the next command usually announces itself before that command exists.
        if (!current || current.seq !== marker.seq) {
          this.#waitingPids.set(marker.seq, Number(marker.fields[0]));
          return;
        }
        current.marker(name, marker);
        return;
      default:
        if (!current || current.seq !== marker.seq) return;
        current.marker(name, marker);
        if (current.finished) this.#commandDone(current);
    }
  }

  #commandDone(proc: SessionProcess): void {
    if (this.#state !== 'busy') return;
    if (proc.reusable) {
      this.#current = undefined;
      this.#state = 'idle';
      this.#hooks.onIdle(this);
    } else {
      // The runner exits after this command; lingering output still goes to it until EOF.
      this.#state = 'gone';
      this.#hooks.onGone(this, false);
    }
  }

  #onStreamEnd(name: StreamName): void {
    const current = this.#current;
    if (current && !current.done) {
      if (current.endedOn(name)) current.endStream(name);
      else this.#die(new SandboxUnavailableError('session ended while a command was running', this.#context));
    }
    if (this.#eof.stdout && this.#eof.stderr) {
      if (current?.done) this.#current = undefined;
      this.#die(new SandboxUnavailableError('session ended', this.#context));
      void this.#closeShell();
    }
  }

  #onShellExit(): void {
    // The output may still be on its way; give it a moment to arrive before failing a command.
    if (this.#exitTimer) return;
    this.#exitTimer = setTimeout(() => {
      const current = this.#current;
      if (current && !current.exitKnown) {
        this.#die(
          new SandboxUnavailableError('session shell exited while a command was running', this.#context),
        );
      } else if (!current) {
        this.#die(new SandboxUnavailableError('session shell exited', this.#context));
      }
    }, EXIT_GRACE_MS);
    this.#exitTimer.unref?.();
  }

  /** The session is lost: fail what depends on it and tell the pool. */
  #die(error: AgentboxError): void {
    // A session that never opened was never the pool's: `open` rejects and that is all.
    const served = this.#state === 'idle' || this.#state === 'busy';
    this.#state = 'gone';
    if (!this.#ready.settled) this.#ready.reject(error);
    for (const kill of this.#pendingKills.values()) kill.reject(error);
    for (const check of this.#pendingChecks.values()) check.reject(error);
    const current = this.#current;
    // A shell killed on our request before it read its command takes the runner with it: expected.
    const expected = current?.killRequested === true;
    if (current && !current.done) {
      const pid = current.pid;
      if (pid !== undefined && !current.exitKnown) this.#hooks.killGroup(pid, 'SIGKILL').catch(() => {});
      current.fail(error);
      this.#current = undefined;
    }
    if (served) this.#hooks.onGone(this, !expected);
    void this.#closeShell();
  }
}

/** What a command needs from its session. */
interface SessionPort {
  send(stdinMode: 0 | 1): Promise<void>;
  writeStdin(chunk: Uint8Array): Promise<void>;
  closeStdin(): Promise<void>;
  killGroup(pgid: number, signal: string): Promise<void>;
}

/**
 * A command on a session, as core's exec engine sees it. The request is sent once the caller
 * shows what it does with stdin: closed at once (exec with no input: stdin is /dev/null and
 * the session is reused) or written to / left open (stdin is the session's own stream,
 * passed through raw, and the session is used once).
 */
export class SessionProcess implements PooledProcess {
  readonly path = 'session' as const;
  readonly seq: number;
  readonly stdout = new StreamQueue();
  readonly stderr = new StreamQueue();
  readonly #port: SessionPort;
  readonly #context: ErrorContext;
  readonly #req: StartRequest;
  readonly #exit = deferred<{ exitCode: number | null; signal: string | null }>();
  /** The process group the command gets (its shell's pid), or undefined once it is over. */
  readonly #pidKnown = deferred<number | undefined>();
  /** true once the command's shell has read its request (stdin is the command's), false if that never comes. */
  readonly #inputReady = deferred<boolean>();
  #killedWith: string | undefined;
  readonly #ended = { stdout: false, stderr: false };
  #mode: 0 | 1 | undefined;
  #decideTimer: NodeJS.Immediate | undefined;
  #pid: number | undefined;
  #lingering = false;
  #failed = false;
  #stdin: Promise<void> = Promise.resolve();

  constructor(seq: number, req: StartRequest, port: SessionPort, context: ErrorContext) {
    this.seq = seq;
    this.#req = req;
    this.#port = port;
    this.#context = { ...context, subject: req.argv.join(' ').slice(0, 200) };
    // exec() closes stdin (or writes it) in the same tick it starts; anything else keeps it open.
    this.#decideTimer = setImmediate(() => this.#decide(1));
  }

  get exit(): Promise<{ exitCode: number | null; signal: string | null }> {
    return this.#exit.promise;
  }

  /** Process group id of the command, once it has started. */
  get pid(): number | undefined {
    return this.#pid;
  }

  get exitKnown(): boolean {
    return this.#exit.settled;
  }

  /** Both end markers are in: the runner is ready for what comes next. */
  get finished(): boolean {
    return this.#ended.stdout && this.#ended.stderr;
  }

  /** Nothing more will happen: the exit is known and both streams are over. */
  get done(): boolean {
    return this.#failed || (this.#exit.settled && this.stdout.ended && this.stderr.ended);
  }

  /** The runner takes another command after this one. */
  get reusable(): boolean {
    return this.#mode === 0 && !this.#lingering && !this.#failed;
  }

  /** The caller has asked to signal this command. */
  get killRequested(): boolean {
    return this.#killedWith !== undefined;
  }

  endedOn(name: StreamName): boolean {
    return this.#ended[name];
  }

  writeStdin(chunk: Uint8Array): Promise<void> {
    if (this.#mode === undefined) this.#decide(1);
    if (this.#mode === 0)
      return Promise.reject(new InvalidArgumentError('stdin is already closed', this.#context));
    const next = this.#stdin.then(async () => {
      if (!(await this.#inputReady.promise) || this.#exit.settled) return;
      await this.#port.writeStdin(chunk);
    });
    this.#stdin = next.catch(() => {});
    return next;
  }

  closeStdin(): Promise<void> {
    if (this.#mode === undefined) {
      this.#decide(0);
      return Promise.resolve();
    }
    if (this.#mode === 0) return Promise.resolve();
    const next = this.#stdin.then(async () => {
      await this.#inputReady.promise;
      await this.#port.closeStdin();
    });
    this.#stdin = next.catch(() => {});
    return next;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!isKnownSignal(signal))
      throw new InvalidArgumentError(`cannot send ${signal} through a session`, this.#context);
    if (this.#mode === undefined) this.#decide(1);
    const pid = await this.#pidKnown.promise;
    // After a clean end the group is gone and its id may be reused; with lingering members it lives on.
    if (pid === undefined || (this.#exit.settled && !this.#lingering) || this.#failed) return;
    this.#killedWith ??= signal;
    await this.#port.killGroup(pid, signal);
  }

  /** Output for this command from the session's reader. */
  output(name: StreamName, bytes: Uint8Array): Promise<void> | undefined {
    return this[name].push(bytes);
  }

  marker(name: StreamName, marker: Marker): void {
    switch (marker.type) {
      case 'S':
        if (name !== 'stdout') return;
        this.#pid = Number(marker.fields[0]);
        this.#pidKnown.resolve(this.#pid);
        return;
      case 'I':
        if (name === 'stdout') this.#inputReady.resolve(true);
        return;
      case 'C': {
        if (name !== 'stdout') return;
        const errno = marker.fields[0];
        this.#inputReady.resolve(false);
        this.#exit.reject(
          fromErrno(
            errno,
            `cannot use ${this.#req.cwd} as working directory (${errno}): ${
              errno === 'ENOENT' || errno === 'ENOTDIR'
                ? 'it does not exist: create it first, or pass another cwd'
                : 'pass a directory the sandbox user may enter'
            }`,
            { ...this.#context, subject: this.#req.cwd },
          ),
        );
        return;
      }
      case 'E': {
        this.#ended[name] = true;
        this.#lingering = marker.fields[1] === '1';
        if (name === 'stdout') {
          this.#inputReady.resolve(false);
          this.#pidKnown.resolve(undefined);
          if (!this.#exit.settled) this.#exit.resolve(exitFromStatus(Number(marker.fields[0])));
        }
        // Processes left in the group may still write: the stream then runs to its real end.
        if (!this.#lingering) this[name].end();
        return;
      }
    }
  }

  endStream(name: StreamName): void {
    this[name].end();
  }

  /**
   * The session is gone with this command in flight. A command we were killing counts as
   * killed (its shell may have died of the signal before it read the request, taking the
   * session with it); any other fails with `error`.
   */
  fail(error: AgentboxError): void {
    this.#failed = true;
    if (this.#decideTimer) clearImmediate(this.#decideTimer);
    this.#inputReady.resolve(false);
    this.#pidKnown.resolve(undefined);
    if (!this.#exit.settled) {
      if (this.#killedWith) this.#exit.resolve(exitFromSignal(this.#killedWith));
      else this.#exit.reject(error);
    }
    this.stdout.end();
    this.stderr.end();
  }

  #decide(mode: 0 | 1): void {
    if (this.#mode !== undefined || this.#failed) return;
    this.#mode = mode;
    if (this.#decideTimer) clearImmediate(this.#decideTimer);
    this.#decideTimer = undefined;
    this.#port.send(mode).catch(() => {});
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}
