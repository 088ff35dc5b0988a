/**
 * Sessions: the fast exec path, shared by the backends (issue 5).
 *
 * A session is one POSIX shell opened once in the sandbox over one long-lived stream (a
 * hijacked docker exec, an ssh channel, a local pipe), running a small runner script. While
 * idle, the runner keeps a fresh `setsid sh` waiting, already the leader of its own process
 * group; a command is one line of shell code written to it (enter `cwd`, export `env`, exec
 * argv), so asking for a command costs one exec: the fork and `setsid` were done while the
 * session was idle (with hidden runner programs, one fork more: the command gets a pid of its own). Nothing a command does (`cd`, `export`, `umask`) reaches the runner or
 * the next command, which gets a fresh shell. The command's stdout and stderr are the
 * session's own streams, byte for byte, with no relay process, temp file or FIFO; marker
 * lines carrying a per-session random nonce say where each command starts and ends and with
 * what status. The sandbox needs `sh`, `setsid` and /proc (busybox alone is enough); where
 * they are missing the pool says why in `unavailableReason` and every command takes the
 * plain path.
 *
 * - Kills go through a separate control shell (`kill -SIG -pgid`), which also checks every
 *   few seconds that the runners are alive: a runner can die (OOM, a command that kills it)
 *   while what it started keeps the streams open, and the command in flight must then fail
 *   with SandboxUnavailableError rather than hang.
 * - stdin: a command whose caller closes stdin at once (exec without input) gets /dev/null
 *   and the session is reused. One that is given input, or keeps stdin open (spawn), gets
 *   the session's stdin raw (any bytes, any size, streamed with backpressure) and the
 *   session is used once, then replaced in the background.
 * - A command that leaves processes in its group (`server &`) that may still write gets its
 *   streams read to their real end, as from a plain pipe; that session is replaced too. A
 *   background process that let go of the streams (`server >log 2>&1 &`) is not waited for.
 * - Concurrency: one command per session at a time, a pool of sessions. When none is idle the
 *   pool opens one more in the background and the command waits for the first session to come
 *   free, at most as long as the quickest recent plain start took; then it takes the plain path.
 *
 * Integration: a backend keeps its plain startProcess and puts the pool in front of it.
 *
 * ```ts
 * class DockerSandbox extends BaseSandbox {
 *   readonly sessions = new SessionPool({
 *     startProcess: (req, signal) => this.startPlain(req, signal), // the existing exec path
 *     context: { backend: 'docker', sandboxId: this.id },
 *   });
 *   protected startProcess(req: StartRequest, signal?: AbortSignal) {
 *     return this.sessions.startProcess(req, signal);
 *   }
 *   protected async closeResources() {
 *     await this.sessions.close(); // first: it kills what still runs on the sessions
 *     // ...
 *   }
 * }
 * // in open(), once the sandbox is up: `await sandbox.sessions.warm();`
 * ```
 *
 * The shells are started with the plain path as `{ argv: ['sh'], cwd: '/', env: {} }` (pass
 * `openShell` to start them another way); that process's environment is the base each
 * session command starts from, with the command's `env` exported over it. The transport must
 * keep stdout and stderr apart (docker: `Tty: false`, demultiplexed; ssh: an exec channel's
 * stderr) and let stdin be ended (docker: half-close of the hijacked stream; ssh: channel
 * EOF). `sessions.lastPath` and `sessions.stats` tell which path commands took.
 *
 * Limits: the shell reports a signal death as 128+n, so a command that itself exits with
 * 129..159 is reported with that signal's name (its exit code is exact). A process that
 * leaves the command's process group (its own `setsid`) while still holding the command's
 * stdout is not waited for, and what it writes later would land in the next command on that
 * session. With bash as `sh`, commands also see `SHLVL=0` (bash's `exec` exports it).
 */
export { SessionPool, type SessionPoolOptions, type SessionPoolStats } from './pool.js';
export type { RunnerPrograms } from './protocol.js';
export type { ExecPath, PooledProcess } from './session.js';
