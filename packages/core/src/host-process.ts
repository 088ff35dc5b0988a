/**
 * Start a command on this host as the leader of a new process group, as a RawProcess whose
 * `kill` signals the whole group. The local backend's transport, and the plain path of tests
 * that need a real process without a sandbox.
 */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { NotFoundError } from './errors.js';
import type { RawProcess, StartRequest } from './process.js';
import { untilDrained } from './writable.js';

export interface HostProcess extends RawProcess {
  /** Process id of the group leader (undefined when the program could not be started). */
  readonly pid: number | undefined;
}

export function startHostProcess(req: StartRequest): HostProcess {
  const cwd = statSync(req.cwd, { throwIfNoEntry: false });
  if (!cwd?.isDirectory())
    throw new NotFoundError(
      `working directory ${req.cwd} does not exist: create it first, or pass another cwd`,
      {
        subject: req.cwd,
      },
    );
  const [program, ...args] = req.argv;
  // detached: the command leads a new process group, so a signal to -pid reaches its whole tree.
  const child = spawn(program!, args, { cwd: req.cwd, env: req.env, detached: true, stdio: 'pipe' });
  const exit = new Promise<{ exitCode: number | null; signal: string | null }>((resolve) => {
    child.once('exit', (exitCode, signal) => resolve({ exitCode, signal }));
    // A program that cannot be started is the shell's "command not found" (127) or "not executable" (126).
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return;
      const code = error.code === 'ENOENT' ? 127 : 126;
      child.stderr.push(`${program}: ${code === 127 ? 'command not found' : 'permission denied'}\n`);
      child.stderr.push(null);
      child.stdout.push(null);
      resolve({ exitCode: code, signal: null });
    });
  });
  child.stdin.on('error', () => {}); // EPIPE when the command exits without reading: reported by writeStdin.

  return {
    get pid() {
      return child.pid;
    },
    stdout: child.stdout,
    stderr: child.stderr,
    exit,
    async writeStdin(chunk) {
      if (child.stdin.destroyed || child.stdin.writableEnded) throw new Error('stdin is closed (EPIPE)');
      if (!child.stdin.write(chunk)) await untilDrained(child.stdin);
    },
    async closeStdin() {
      child.stdin.end();
    },
    async kill(signal) {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    },
  };
}
