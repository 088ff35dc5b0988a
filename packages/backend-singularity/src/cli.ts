/**
 * The apptainer / singularity command line as this backend drives it: which program, with
 * what environment, and one helper that runs a subcommand to its end.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AgentboxError, SandboxUnavailableError } from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';

/** The names the CLI is installed under, in the order they are looked for. */
export const CLI_NAMES = ['apptainer', 'singularity'] as const;

export const INSTALL_HINT =
  'install Apptainer (https://apptainer.org/docs/admin/main/installation.html: the apptainer package of your distribution, or the release .deb/.rpm) or SingularityCE, or set config.binary to its path';

export interface Cli {
  /** Absolute path of the program. */
  path: string;
  /** `apptainer` or `singularity`: the name it goes by (Apptainer installs both). */
  flavour: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The CLI to use: `binary` (a path, or a name looked up on PATH), else apptainer, else singularity; or why none. */
export function findCli(binary: string | undefined, searchPath: string): Cli | string {
  const lookup = (name: string) =>
    name.includes('/')
      ? executable(name)
        ? name
        : undefined
      : searchPath
          .split(delimiter)
          .filter((dir) => dir.startsWith('/'))
          .map((dir) => join(dir, name))
          .find(executable);
  if (binary !== undefined) {
    const path = lookup(binary);
    if (!path) return `config.binary ${binary} is not an executable program (${INSTALL_HINT})`;
    return { path, flavour: basename(path).includes('singularity') ? 'singularity' : 'apptainer' };
  }
  for (const name of CLI_NAMES) {
    const path = lookup(name);
    if (path) return { path, flavour: name };
  }
  return `neither apptainer nor singularity is on PATH: ${INSTALL_HINT}`;
}

/**
 * The CLI's own environment: this process's, without the APPTAINER_* / SINGULARITY_* variables
 * (APPTAINER_CLEANENV, APPTAINER_BIND, APPTAINERENV_X...) that would change what the adapter
 * asked for. Commands never see it: they run under `env -i` with exactly their own variables.
 */
export function cliEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source))
    if (value !== undefined && !/^(APPTAINER|SINGULARITY)/.test(name)) env[name] = value;
  return env;
}

export interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
}

/** Run the CLI to its end, stdin from `input` (or closed). */
export async function runCli(
  cli: Cli,
  args: readonly string[],
  opts: { input?: AsyncIterable<Uint8Array>; signal?: AbortSignal | undefined; context: ErrorContext },
): Promise<CliResult> {
  const child = spawn(cli.path, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: cliEnv(),
    signal: opts.signal,
  });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  child.stdin.on('error', () => {});
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  if (opts.input) {
    // A script that exits early (a bad path) closes its stdin: its exit status says why.
    await pipeline(opts.input, child.stdin).catch((error) => {
      if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
    });
  } else child.stdin.end();
  const { code, signal } = await exited.catch((error: Error) => {
    throw error.name === 'AbortError'
      ? error
      : new SandboxUnavailableError(`cannot run ${cli.path}: ${error.message}`, opts.context);
  });
  return { code, signal, stdout: Buffer.concat(out), stderr: err };
}

/** Run the CLI and throw (SandboxUnavailableError, with its message) unless it exits 0. */
export async function checkCli(
  cli: Cli,
  args: readonly string[],
  what: string,
  context: ErrorContext,
  signal?: AbortSignal,
): Promise<CliResult> {
  const r = await runCli(cli, args, { context, signal });
  if (r.code !== 0)
    throw new SandboxUnavailableError(
      `${what} failed (${cli.flavour} ${args.slice(0, 2).join(' ')}: ${r.signal ?? `exit ${r.code}`}): ${r.stderr.trim() || 'no message'}`,
      context,
    );
  return r;
}

/** One running instance as `instance list --json` shows it. */
export interface ListedInstance {
  instance: string;
  pid: number;
  img?: string;
}

/** The running instances (`instance list --json`), optionally only `name`. */
export async function listInstances(
  cli: Cli,
  context: ErrorContext,
  name?: string,
): Promise<ListedInstance[]> {
  const r = await checkCli(
    cli,
    ['instance', 'list', '--json', ...(name ? [name] : [])],
    'listing instances',
    context,
  );
  try {
    const parsed = JSON.parse(r.stdout.toString('utf8')) as { instances?: ListedInstance[] | null };
    return (parsed.instances ?? []).filter((i) => typeof i.instance === 'string' && Number.isInteger(i.pid));
  } catch (error) {
    throw new AgentboxError(`${cli.flavour} instance list --json printed no JSON`, {
      ...context,
      cause: error,
    });
  }
}
