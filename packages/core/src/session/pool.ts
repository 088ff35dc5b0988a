/**
 * SessionPool: the fast exec path a backend puts in front of its plain one. Commands run on
 * idle sessions. When none is idle the pool opens another session in the background (up to
 * `maxSessions`), so it grows to the concurrency the caller actually uses, and the command waits
 * for a session to come free, but no longer than the plain path takes to start one: a burst of
 * small commands then runs one after another on the open sessions (a few ms each) instead of
 * each paying a plain start, while a command stuck behind long ones loses at most that start
 * time. Sessions that die are dropped and replaced; kills go through a separate control shell,
 * because a session's runner is busy waiting for its command.
 */
import { type ErrorContext, SandboxClosedError, UnsupportedError } from '../errors.js';
import { DEFAULT_ENV, type RawProcess, type StartRequest } from '../process.js';
import type { SignalName } from '../signals.js';
import { type RunnerPrograms, sessionCanRun } from './protocol.js';
import { type ExecPath, type PooledProcess, Session, type SessionHooks } from './session.js';

/** Longest wait between attempts to open a session after failures (plain path meanwhile). */
const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** How many recent plain starts (and session opens) the wait for a free session is weighed against. */
const START_SAMPLES = 8;

export interface SessionPoolOptions {
  /**
   * The backend's plain path (what its startProcess does without sessions). It runs every
   * command the fast path does not take, and starts the sessions' shells unless `openShell`
   * is given.
   */
  startProcess(req: StartRequest, signal: AbortSignal | undefined): Promise<RawProcess>;
  /**
   * Start one long-lived POSIX shell that reads its script from stdin, with stdout and stderr
   * kept apart. Default: `startProcess({ argv: ['sh'], cwd: '/', env: {} })`. Its environment
   * is the base every session command starts from (the command's `env` is exported on top).
   */
  openShell?(): Promise<RawProcess>;
  /**
   * Asked once each shell is open: the runner's programs for its waiting shells, when the
   * backend started the shell itself from such hidden copies (see RunnerPrograms). Default none.
   */
  runnerPrograms?(): RunnerPrograms | undefined;
  /**
   * Signal a session command's process group (timeouts, kills, a session lost mid-command).
   * Default: through the pool's control shell, else a `kill` on the plain path. A backend whose
   * transport can drop (ssh) passes its own, which can remember a group it could not reach and
   * kill it once it reconnects. Called synchronously when a session is lost.
   */
  signalGroup?(pgid: number, signal: string): Promise<void>;
  /** Sessions open at most, i.e. commands on the fast path at the same time; beyond, the plain path. Default 8. */
  maxSessions?: number;
  /** Idle sessions kept ready after the first use or `warm()`, so the next command never waits. Default 1. */
  spareSessions?: number;
  /** `false` sends every command down the plain path. Default true. */
  enabled?: boolean;
  /** How long a session may take to open and answer its probe. Default 30 000. */
  openTimeoutMs?: number;
  /** How long after a failed open the pool tries again (plain path meanwhile). Default 5 000. */
  retryAfterMs?: number;
  /**
   * How often the control shell checks that the sessions' runners are alive. A runner can die
   * (OOM, a command that kills it) while processes it started keep its streams open, so a
   * transport that reports an exit only once the streams end would not tell. Default 2 000.
   */
  livenessIntervalMs?: number;
  /** Backend and sandbox named in errors. */
  context?: ErrorContext;
}

export interface SessionPoolStats {
  /** Commands started on a session. */
  session: number;
  /** Commands started on the plain path. */
  plain: number;
  /** Sessions opened so far (the control shell not included). */
  opened: number;
  /** Sessions that died unexpectedly (killed, OOM, a command that killed its runner...). */
  lost: number;
  /** Sessions open now, idle or busy. */
  open: number;
  idle: number;
}

/** The plain path's process, marked as such. */
class PlainProcess implements PooledProcess {
  readonly path = 'plain' as const;
  readonly #raw: RawProcess;
  constructor(raw: RawProcess) {
    this.#raw = raw;
  }
  get stdout(): AsyncIterable<Uint8Array> {
    return this.#raw.stdout;
  }
  get stderr(): AsyncIterable<Uint8Array> {
    return this.#raw.stderr;
  }
  get exit(): Promise<{ exitCode: number | null; signal: string | null }> {
    return this.#raw.exit;
  }
  writeStdin(chunk: Uint8Array): Promise<void> {
    return this.#raw.writeStdin(chunk);
  }
  closeStdin(): Promise<void> {
    return this.#raw.closeStdin();
  }
  kill(signal: SignalName): Promise<void> {
    return this.#raw.kill(signal);
  }
}

export class SessionPool {
  readonly #options: SessionPoolOptions;
  readonly #context: ErrorContext;
  readonly #maxSessions: number;
  readonly #spare: number;
  /** Sessions that take commands (idle or busy). */
  readonly #sessions = new Set<Session>();
  /** Every session whose shell is still open, including ones finishing a last command. */
  readonly #everything = new Set<Session>();
  #idle: Session[] = [];
  #opening = 0;
  #control: Promise<Session> | undefined;
  #unavailable: string | undefined;
  #retryAt = 0;
  #failures = 0;
  #closed = false;
  /** Set once close() has ended the control shell: nothing may open another. */
  #finished = false;
  #watchdog: NodeJS.Timeout | undefined;
  #checking = false;
  #stats = { session: 0, plain: 0, opened: 0, lost: 0 };
  /** Commands waiting for a session to come free, oldest first. */
  readonly #waiters = new Set<(session: Session | undefined) => void>();
  /** Recent times (ms) the plain path took to start a command, or a session to open. */
  #startTimes: number[] = [];
  /** The most commands seen wanting a session at once (running on one or waiting): what the pool grows to. */
  #wanted = 0;
  /** The path the last command took. */
  lastPath: ExecPath | undefined;

  constructor(options: SessionPoolOptions) {
    this.#options = options;
    this.#context = options.context ?? {};
    this.#maxSessions = options.maxSessions ?? 8;
    this.#spare = Math.min(options.spareSessions ?? 1, this.#maxSessions);
    if (options.enabled === false) this.#unavailable = 'sessions are turned off';
  }

  get stats(): SessionPoolStats {
    return { ...this.#stats, open: this.#sessions.size, idle: this.#idle.length };
  }

  /** Why the fast path is off for good (turned off, or the sandbox cannot run the runner); undefined while it may work. */
  get unavailableReason(): string | undefined {
    return this.#unavailable;
  }

  /**
   * Start a command: on an idle session if there is one, else on the first to come free within
   * the plain path's start time, else on the plain path.
   */
  async startProcess(req: StartRequest, signal?: AbortSignal): Promise<PooledProcess> {
    if (this.#closed) throw new SandboxClosedError('the sandbox is closed', this.#context);
    const runnable = sessionCanRun(req, this.#options.runnerPrograms?.());
    let session = runnable ? this.#takeIdle() : undefined;
    if (runnable && !session) {
      const busy = this.#sessions.size - this.#liveIdle();
      this.#wanted = Math.min(this.#maxSessions, Math.max(this.#wanted, busy + this.#waiters.size + 1));
      this.#grow();
      const handed = await this.#freeSession(signal);
      if (this.#closed) throw new SandboxClosedError('the sandbox is closed', this.#context);
      // A session can die between being handed over and now (the liveness check).
      if (handed?.idle) session = handed;
    }
    if (session) {
      this.#stats.session++;
      this.lastPath = 'session';
      const proc = session.run(req);
      this.#replenish();
      return proc;
    }
    this.#stats.plain++;
    this.lastPath = 'plain';
    const started = performance.now();
    const raw = await this.#options.startProcess(req, signal);
    this.#noteStart(performance.now() - started);
    return new PlainProcess(raw);
  }

  /**
   * Open sessions until `count` are idle (default: the spare count, at least one). Resolves
   * true when the fast path is ready, false when it cannot be used here.
   */
  async warm(count = Math.max(this.#spare, 1)): Promise<boolean> {
    const want = Math.min(count, this.#maxSessions);
    while (!this.#closed && this.#unavailable === undefined && this.#liveIdle() < want) {
      if (this.#sessions.size + this.#opening >= this.#maxSessions) break;
      if (!(await this.#openOne())) break;
    }
    // Kills (timeouts) go through the control shell: have it ready too, without waiting for it.
    // Started after the sessions, not beside them: on a busy host the two starts slow each other.
    if (this.#unavailable === undefined && !this.#closed) this.#controlSession().catch(() => {});
    return this.#liveIdle() > 0;
  }

  /** End every session (killing what still runs on them) and the control shell. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#watchdog) clearInterval(this.#watchdog);
    const error = new SandboxClosedError('the sandbox was closed while the command ran', this.#context);
    const sessions = [...this.#everything];
    this.#sessions.clear();
    this.#idle = [];
    for (const waiter of [...this.#waiters]) waiter(undefined);
    await Promise.all(sessions.map((session) => session.close(error)));
    this.#finished = true;
    const control = this.#control;
    this.#control = undefined;
    if (control) await control.then((session) => session.close(error)).catch(() => {});
  }

  #liveIdle(): number {
    this.#idle = this.#idle.filter((session) => session.idle);
    return this.#idle.length;
  }

  #takeIdle(): Session | undefined {
    for (let session = this.#idle.pop(); session; session = this.#idle.pop())
      if (session.idle) return session;
    return undefined;
  }

  /**
   * The next session to come free or open, if one does within the plain path's start time (the
   * fastest of its recent starts: a wait never costs more than a start on a quiet host would).
   * Nothing to wait for when no session is busy or opening, or before any start was measured.
   */
  #freeSession(signal: AbortSignal | undefined): Promise<Session | undefined> {
    const limit = this.#startTimes.length > 0 ? Math.min(...this.#startTimes) : 0;
    if (limit <= 0 || signal?.aborted || this.#sessions.size + this.#opening === 0)
      return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter = (session: Session | undefined) => {
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener('abort', giveUp);
        resolve(session);
      };
      const giveUp = () => waiter(undefined);
      const timer = setTimeout(giveUp, limit);
      signal?.addEventListener('abort', giveUp, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** A session is free: to the longest waiting command, else to the idle list. */
  #release(session: Session): void {
    const [waiter] = this.#waiters;
    if (waiter) waiter(session);
    else this.#idle.push(session);
  }

  #noteStart(ms: number): void {
    this.#startTimes.push(ms);
    if (this.#startTimes.length > START_SAMPLES) this.#startTimes.shift();
  }

  /**
   * Open one more session in the background, unless one is opening already: several docker execs
   * starting at once slow the sessions already serving (a burst of 8 on a fresh sandbox took
   * 330-400 ms that way, 50-170 ms this way). Each open that ends starts the next while fewer
   * sessions are open than were wanted.
   */
  #grow(): void {
    if (this.#closed || this.#unavailable !== undefined || Date.now() < this.#retryAt) return;
    if (this.#opening > 0 || this.#sessions.size >= this.#maxSessions) return;
    void this.#openOne().then(() => {
      if (this.#wanted > this.#sessions.size) this.#grow();
    });
  }

  /** Keep `spareSessions` idle or on their way, once sessions are in use. */
  #replenish(): void {
    const missing = this.#spare - this.#liveIdle() - this.#opening;
    if (missing > 0) this.#grow();
  }

  async #openOne(): Promise<boolean> {
    this.#opening++;
    try {
      const started = performance.now();
      const session = await this.#openSession(this.#hooks);
      this.#noteStart(performance.now() - started);
      this.#stats.opened++;
      this.#failures = 0;
      this.#everything.add(session);
      void session.ended.then(() => this.#everything.delete(session));
      this.#watchdog ??= setInterval(
        () => void this.#checkLiveness(),
        this.#options.livenessIntervalMs ?? 2_000,
      );
      this.#watchdog.unref?.();
      if (this.#closed) {
        await session.close(new SandboxClosedError('the sandbox is closed', this.#context));
        return false;
      }
      this.#sessions.add(session);
      this.#release(session);
      return true;
    } catch (error) {
      if (error instanceof UnsupportedError) {
        this.#unavailable = error.message;
        // The control shell only serves sessions.
        const control = this.#control;
        this.#control = undefined;
        control?.then((session) => session.close(error)).catch(() => {});
      } else {
        // A transient failure (a dropped connection, a busy host): back off, but never give up
        // for good, so the fast path comes back once the sandbox is reachable again.
        const base = this.#options.retryAfterMs ?? 5_000;
        const delay = base * 2 ** Math.min(this.#failures++, 6);
        this.#retryAt = Date.now() + Math.min(delay, MAX_RETRY_DELAY_MS);
      }
      return false;
    } finally {
      this.#opening--;
    }
  }

  async #openSession(hooks: SessionHooks, role: 'command' | 'control' = 'command'): Promise<Session> {
    const shell = await (this.#options.openShell
      ? this.#options.openShell()
      : this.#options.startProcess({ argv: ['sh'], cwd: '/', env: {} }, undefined));
    return Session.open(
      shell,
      hooks,
      this.#context,
      this.#options.openTimeoutMs ?? 30_000,
      role,
      this.#options.runnerPrograms?.(),
    );
  }

  readonly #hooks: SessionHooks = {
    onIdle: (session) => {
      if (this.#closed) return;
      this.#release(session);
    },
    onGone: (session, lost) => {
      this.#sessions.delete(session);
      this.#idle = this.#idle.filter((s) => s !== session);
      if (lost) this.#stats.lost++;
      this.#replenish();
    },
    killGroup: (pgid, signal) => this.#killGroup(pgid, signal),
  };

  readonly #controlHooks: SessionHooks = {
    onIdle: () => {},
    onGone: () => {
      this.#control = undefined;
    },
    killGroup: () => Promise.resolve(),
  };

  #controlSession(): Promise<Session> {
    if (this.#control) return this.#control;
    if (this.#finished) return Promise.reject(new SandboxClosedError('the sandbox is closed', this.#context));
    const control = this.#openSession(this.#controlHooks, 'control');
    this.#control = control;
    control.catch(() => {
      if (this.#control === control) this.#control = undefined;
    });
    return control;
  }

  /** Ask the control shell which runners are gone, and drop their sessions. */
  async #checkLiveness(): Promise<void> {
    if (this.#checking || this.#closed) return;
    const sessions = [...this.#sessions].filter((session) => !session.gone && session.runnerPid > 0);
    // Idle sessions alone do not justify opening a control shell; a busy one does.
    if (sessions.length === 0 || (!this.#control && sessions.every((session) => session.idle))) return;
    this.#checking = true;
    try {
      const dead = new Set(await (await this.#controlSession()).deadOf(sessions.map((s) => s.runnerPid)));
      for (const session of sessions) if (dead.has(session.runnerPid)) session.lost();
    } catch {
      // No control shell right now: try again next time.
    } finally {
      this.#checking = false;
    }
  }

  /** Signal a command's process group through the control shell, or through the plain path if that fails. */
  async #killGroup(pgid: number, signal: string): Promise<void> {
    if (this.#options.signalGroup) return this.#options.signalGroup(pgid, signal);
    try {
      await (await this.#controlSession()).signalGroup(signal, pgid);
      return;
    } catch {
      // No control shell: signal through the plain path instead.
    }
    const name = signal.replace(/^SIG/, '');
    const proc = await this.#options.startProcess(
      {
        argv: ['sh', '-c', `kill -${name} -${pgid} 2>/dev/null || kill -${name} ${pgid} 2>/dev/null; exit 0`],
        cwd: '/',
        env: { PATH: DEFAULT_ENV.PATH! },
      },
      undefined,
    );
    await proc.closeStdin().catch(() => {});
    await Promise.all([drain(proc.stdout), drain(proc.stderr), proc.exit]);
  }
}

async function drain(stream: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of stream) {
    // discard
  }
}
