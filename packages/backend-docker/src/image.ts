/**
 * The images a sandbox runs: the `pull` setting (pull a missing image, always pull, never
 * pull), a pull that reports its progress and can be aborted, and the errors a user can act on
 * (not in the registry, registry unreachable, refused by `pull: 'never'`).
 */
import {
  AbortedError,
  type AgentboxError,
  InvalidArgumentError,
  NotFoundError,
  type OpenProgress,
  SandboxUnavailableError,
} from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import { type DockerClient, dockerError, dockerMessage, statusOf } from './client.js';
import { DEFAULT_IMAGE as DEFAULT_IMAGE_NAME, type PullPolicy } from './config.js';

/** Which config field named the image, for messages and `issues`. */
export type ImageField = 'image' | 'helperImage';

export interface EnsureImageOptions {
  pull: PullPolicy;
  field: ImageField;
  onProgress?: ((event: OpenProgress) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** Make `image` usable on the daemon as the pull setting says: inspect, and pull when asked to. */
export async function ensureImage(
  client: DockerClient,
  image: string,
  options: EnsureImageOptions,
  context: ErrorContext,
): Promise<void> {
  if (options.pull === 'always') return pullImage(client, image, options, context);
  if (await imagePresent(client, image, context)) return;
  if (options.pull === 'missing') return pullImage(client, image, options, context);
  throw new InvalidArgumentError(
    `image ${image} is not on the Docker daemon at ${client.address} and config.pull is 'never': run \`docker pull ${image}\` (or build it), or set pull: 'missing' to let agentbox pull it`,
    { ...context, issues: [`config.${options.field}: ${image} is not on the daemon (pull: 'never')`] },
  );
}

/** True when the daemon has the image; false when it does not. */
export async function imagePresent(
  client: DockerClient,
  image: string,
  context: ErrorContext,
): Promise<boolean> {
  try {
    await client.docker.getImage(image).inspect();
    return true;
  } catch (error) {
    if (statusOf(error) === 404) return false;
    throw dockerError(error, context, client.address);
  }
}

/** One line of the daemon's pull stream. */
interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/** Pull `image` through the daemon, reporting progress; typed errors for what a user can fix. */
export async function pullImage(
  client: DockerClient,
  image: string,
  options: Omit<EnsureImageOptions, 'pull'>,
  context: ErrorContext,
): Promise<void> {
  const { signal, onProgress } = options;
  const pullContext = { ...context, subject: image };
  const aborted = () =>
    new AbortedError(`pulling ${image} was aborted`, { ...pullContext, cause: signal?.reason });
  if (signal?.aborted) throw aborted();
  const report = (event: Omit<OpenProgress, 'backend' | 'stage'>) => {
    try {
      onProgress?.({ backend: 'docker', stage: 'pull', ...event });
    } catch {
      // A failing progress display must not fail the pull.
    }
  };
  report({ message: `pulling ${image}` });
  let stream: NodeJS.ReadableStream;
  try {
    stream = await raceAbort(client.docker.pull(image) as Promise<NodeJS.ReadableStream>, signal, aborted);
  } catch (error) {
    throw pullError(error, image, client, options.field, pullContext);
  }
  const progress = new PullProgress(image);
  let last = '';
  const onAbort = () => (stream as unknown as { destroy(error?: Error): void }).destroy(aborted());
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    let buffered = '';
    for await (const chunk of stream) {
      buffered += chunk.toString();
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
        if (!line) continue;
        const event = JSON.parse(line) as PullEvent;
        if (event.error !== undefined) {
          throw pullError(
            Object.assign(new Error(event.errorDetail?.message ?? event.error), { statusCode: 500 }),
            image,
            client,
            options.field,
            pullContext,
          );
        }
        const message = progress.add(event);
        if (message === last) continue;
        last = message;
        report(
          progress.total > 0 ? { message, current: progress.current, total: progress.total } : { message },
        );
      }
    }
  } catch (error) {
    if (signal?.aborted) throw aborted();
    throw pullError(error, image, client, options.field, pullContext);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (signal?.aborted) throw aborted();
}

/** The pull stream folded into one line and a byte count over every layer being downloaded. */
class PullProgress {
  readonly #layers = new Map<string, { current: number; total: number }>();
  readonly #image: string;
  current = 0;
  total = 0;

  constructor(image: string) {
    this.#image = image;
  }

  /** Take one event; the line to show for it. */
  add(event: PullEvent): string {
    const status = event.status ?? '';
    const layer = event.id ? this.#layers.get(event.id) : undefined;
    if (event.id && status === 'Downloading' && event.progressDetail?.total) {
      this.#layers.set(event.id, {
        current: event.progressDetail.current ?? 0,
        total: event.progressDetail.total,
      });
    } else if (layer && (status === 'Download complete' || status === 'Verifying Checksum')) {
      layer.current = layer.total;
    }
    this.current = 0;
    this.total = 0;
    for (const l of this.#layers.values()) {
      this.current += l.current;
      this.total += l.total;
    }
    const downloading =
      status === 'Downloading' || status === 'Verifying Checksum' || status === 'Download complete';
    if (downloading && this.total > 0)
      return `pulling ${this.#image}: ${mib(this.current)} of ${mib(this.total)} MiB`;
    // Per-layer steps name the layer; the summary lines (Digest, Status) stand alone.
    const layerName =
      event.id && /^(Status:|Digest:|Pulling from )/.test(status) === false ? `${event.id}: ` : '';
    return `pulling ${this.#image}: ${layerName}${status}`;
  }
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  aborted: () => Error,
): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      // The request is under way: its stream is stopped as soon as it comes.
      promise.then(
        (value) => (value as { destroy?: () => void }).destroy?.(),
        () => {},
      );
      reject(aborted());
      return;
    }
    const onAbort = () => reject(aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) {
          // The stream already started: stop it so the daemon cancels the pull.
          (value as { destroy?: () => void }).destroy?.();
          return;
        }
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** What the daemon said without dockerode's `(HTTP code 500) server error - ` prefix. */
function daemonSaid(error: unknown): string {
  return dockerMessage(error)
    .replace(/^\(HTTP code \d+\) [^-]*- /, '')
    .trim();
}

/**
 * A failed pull as a typed error. The daemon answers 404 when the registry has no such image
 * (or refuses to say: private repositories look the same) and 500 for everything between it
 * and the registry; its message is kept as said.
 */
function pullError(
  error: unknown,
  image: string,
  client: DockerClient,
  field: ImageField,
  context: ErrorContext,
): AgentboxError {
  if (error instanceof AbortedError) return error;
  const said = daemonSaid(error);
  const withCause = { ...context, cause: error };
  const status = statusOf(error);
  if (status === 404)
    return new NotFoundError(
      `image ${image} was not found in its registry (${said}): check the name and tag in config.${field}; for a private registry, pull it on the daemon's host first (\`docker login\`, \`docker pull ${image}\`) and agentbox uses it as it is`,
      withCause,
    );
  if (status === undefined) return dockerError(error, context, client.address);
  return new SandboxUnavailableError(
    `the Docker daemon at ${client.address} could not pull ${image} (${said}): is its registry reachable from the daemon? Or get the image onto the daemon another way (\`docker pull\`, \`docker load\`, or build agentbox's own image; see the @agentbox/backend-docker README) and set pull: 'never'`,
    withCause,
  );
}

/**
 * What the sandbox image must have: `/bin/sh` (every command starts there), `setsid` as a file
 * on PATH (commands are exec'd through it by path), and what the command wrapper, the kill and
 * the file checks call. A shell builtin or a busybox applet the shell runs itself counts.
 */
export const SANDBOX_TOOLS = ['id', 'stat', 'cat', 'chmod', 'mkdir', 'readlink', 'sleep'] as const;

/** What the checkpoint helper's scripts call (core's ExecCheckpointStore). */
export const HELPER_TOOLS = [
  'find',
  'xargs',
  'stat',
  'sha256sum',
  'cp',
  'mv',
  'ln',
  'rm',
  'mkdir',
  'chmod',
  'chown',
  'touch',
  'readlink',
  'cat',
  'dd',
  'tar',
  'sleep',
] as const;

/**
 * Arguments: the tools to look for. Prints `setsid PATH` (empty when there is none) and
 * `missing NAMES` (space-separated), each on its own line, then `probe-done`.
 */
export const TOOLS_PROBE = `s=
IFS=:
for d in $PATH /usr/bin /bin /usr/sbin /sbin; do
  if [ -x "$d/setsid" ] && [ ! -d "$d/setsid" ]; then s=$d/setsid; break; fi
done
unset IFS
m=
for c in "$@"; do command -v "$c" >/dev/null 2>&1 || m="$m $c"; done
printf 'setsid %s\\nmissing%s\\nprobe-done\\n' "$s" "$m"`;

/** The probe's answer: where setsid is, and which tools are missing. */
export function parseToolsProbe(stdout: string): { setsid: string; missing: string[] } | undefined {
  const lines = stdout.split('\n');
  if (!lines.includes('probe-done')) return undefined;
  const value = (key: string) => {
    const line = lines.find((l) => l === key || l.startsWith(`${key} `));
    return line === undefined ? '' : line.slice(key.length).trim();
  };
  return { setsid: value('setsid'), missing: value('missing').split(' ').filter(Boolean) };
}

/** An image that lacks tools the backend runs in it: what is missing and how to get an image that works. */
export function missingToolsError(
  image: string,
  field: ImageField,
  missing: readonly string[],
  context: ErrorContext,
): InvalidArgumentError {
  const list = missing.join(', ');
  const setsid = missing.includes('setsid')
    ? ' (setsid comes with util-linux on Debian, Ubuntu and Alpine; busybox has it too)'
    : '';
  return new InvalidArgumentError(
    `image ${image} cannot be used as the ${field === 'image' ? 'sandbox' : 'checkpoint helper'} image: it has no ${list} on PATH. Use the default (${DEFAULT_IMAGE_NAME}) or agentbox's own image (a Dockerfile ships in @agentbox/backend-docker/image), or install ${missing.length === 1 ? 'it' : 'them'} in ${image}${setsid}`,
    { ...context, issues: missing.map((tool) => `config.${field}: ${image} has no ${tool}`) },
  );
}
