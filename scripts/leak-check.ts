/**
 * The leak check every backend package runs after its whole suite (issue 18): its vitest
 * globalSetup calls `startLeakWatch` first and returns the teardown it gets. The run gets a
 * private temp directory (TMPDIR, so every temp folder and default sandbox root of its tests
 * lands there) and a session id (AGENTBOX_TEST_SESSION, the prefix of the tests' run labels);
 * both reach the test workers through the environment. Afterwards the teardown names whatever of
 * the run is left — docker containers, volumes, networks and images labelled with this session
 * or made by this run's emulators, processes still running from the private directory, files
 * in it, and anything the package adds — and fails the run if there is any. It looks at this
 * run's own objects only, so suites of other checkouts on the same daemon never trip it.
 */
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The label the tests put on what they create; its value starts with the session id. */
export const RUN_LABEL = 'agentbox.test-run';
/** The file (in the private directory) where emulator wrappers record their instance ids. */
export const EMULATOR_INSTANCES_FILE = '.emulator-instances';
const EMULATOR_INSTANCE_LABEL = 'io.agentbox.emulator.instance';
/** What the test tools keep in TMPDIR (tsx's compile cache, Node's own on Node 22 and newer). */
const TOOL_CACHES = [/^tsx-\d+$/, /^node-compile-cache$/];

export interface LeakWatchOptions {
  /** Package name, for the temp directory and the message. */
  name: string;
  /** Look for docker objects of this session (labels) and of this run's emulators. */
  docker?: boolean;
  /** Names in the private temp directory that are per-run caches the tests keep on purpose, not leaks. */
  caches?: RegExp[];
  /** More leftovers to name (remote workspaces, cgroups...), checked after the rest. */
  extra?: () => Promise<string[]> | string[];
}

/** Set up the private temp directory and the session id; the returned teardown checks for leaks. */
export function startLeakWatch(options: LeakWatchOptions): () => Promise<void> {
  const session = `s${randomBytes(5).toString('hex')}`;
  // Short: sandboxes below it put unix sockets there, whose paths may not exceed 107 bytes.
  const base = join(tmpdir(), `abt-${session}`);
  // Searchable by all (like /tmp itself): tests hand sshd keys below it, which it reads as another user.
  mkdirSync(base, { recursive: true, mode: 0o755 });
  chmodSync(base, 0o755);
  const previousTmp = process.env.TMPDIR;
  process.env.TMPDIR = base;
  process.env.AGENTBOX_TEST_SESSION = session;
  return async () => {
    try {
      const found = [
        ...(options.docker ? await dockerLeftovers(session, base) : []),
        ...processLeftovers(base),
        ...fileLeftovers(base, [...TOOL_CACHES, ...(options.caches ?? [])]),
        ...((await options.extra?.()) ?? []),
      ];
      if (found.length > 0) {
        // vitest reports an error thrown here but still exits 0: the exit code says it too.
        process.exitCode = 1;
        throw new Error(
          `leak check (${options.name}): the suite left ${found.length} thing(s) behind:\n  ${found.join('\n  ')}`,
        );
      }
      console.log(`leak check (${options.name}): nothing left behind`);
    } finally {
      rmSync(base, { recursive: true, force: true });
      if (previousTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previousTmp;
    }
  };
}

/** The run id a test file puts in its run label: the session id first, so the teardown finds it. */
export function sessionRunId(): string {
  return `${process.env.AGENTBOX_TEST_SESSION ?? 'nosession'}-${process.pid}-${Date.now().toString(36)}`;
}

/** Note an emulator's instance id for the teardown, which then looks for what that emulator made. */
export function recordEmulatorInstance(instance: string): void {
  if (process.env.AGENTBOX_TEST_SESSION === undefined) return;
  appendFileSync(join(tmpdir(), EMULATOR_INSTANCES_FILE), `${instance}\n`);
}

/** Processes (other than this one) whose command line or working directory is in `dir`. */
function processLeftovers(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    let cmdline = '';
    let cwd = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // Gone, or not ours to read.
    }
    if (cmdline.includes(dir) || cwd.startsWith(dir)) found.push(`process ${pid}: ${cmdline.slice(0, 160)}`);
  }
  return found;
}

/** Files and folders left in the private temp directory (its bookkeeping file aside). */
function fileLeftovers(dir: string, caches: readonly RegExp[]): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name !== EMULATOR_INSTANCES_FILE && !caches.some((c) => c.test(name)))
    .map((name) => `temp ${join(dir, name)}`);
}

/** Docker objects labelled with this session's run ids, or made by this run's emulators. */
async function dockerLeftovers(session: string, dir: string): Promise<string[]> {
  const instancesFile = join(dir, EMULATOR_INSTANCES_FILE);
  const instances = new Set(
    existsSync(instancesFile) ? readFileSync(instancesFile, 'utf8').split('\n').filter(Boolean) : [],
  );
  const ours = (labels: Record<string, string> | null | undefined) =>
    (labels?.[RUN_LABEL] ?? '').startsWith(`${session}-`) ||
    instances.has(labels?.[EMULATOR_INSTANCE_LABEL] ?? '');
  const byLabel = (key: string) => encodeURIComponent(JSON.stringify({ label: [key] }));
  const found: string[] = [];
  for (const key of [RUN_LABEL, EMULATOR_INSTANCE_LABEL]) {
    const [containers, volumes, networks, images] = await Promise.all([
      dockerGet<{ Names: string[]; Labels: Record<string, string> }[]>(
        `/containers/json?all=1&filters=${byLabel(key)}`,
      ),
      dockerGet<{ Volumes: { Name: string; Labels: Record<string, string> | null }[] | null }>(
        `/volumes?filters=${byLabel(key)}`,
      ),
      dockerGet<{ Name: string; Labels: Record<string, string> }[]>(`/networks?filters=${byLabel(key)}`),
      dockerGet<{ RepoTags: string[] | null; Id: string; Labels: Record<string, string> | null }[]>(
        `/images/json?filters=${byLabel(key)}`,
      ),
    ]);
    for (const c of containers) if (ours(c.Labels)) found.push(`container ${c.Names[0]?.replace(/^\//, '')}`);
    for (const v of volumes.Volumes ?? []) if (ours(v.Labels)) found.push(`volume ${v.Name}`);
    for (const n of networks) if (ours(n.Labels)) found.push(`network ${n.Name}`);
    for (const i of images) if (ours(i.Labels)) found.push(`image ${i.RepoTags?.[0] ?? i.Id}`);
  }
  return [...new Set(found)];
}

/** GET from the Docker API over its unix socket (DOCKER_HOST unix://..., or the default). */
function dockerGet<T>(path: string): Promise<T> {
  const host = process.env.DOCKER_HOST;
  const socketPath = host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET', timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`docker ${path}: ${res.statusCode} ${body}`));
        else resolve(JSON.parse(body) as T);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`docker ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}
