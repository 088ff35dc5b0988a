/**
 * The packages as an npm user gets them: every publishable package packed (as
 * scripts/check-packages.sh packs it), the tarballs installed with npm into a fresh project
 * outside the workspace, a strict TypeScript consumer (skipLibCheck off) compiled with
 * moduleResolution node16 and bundler, then run on the local backend and on docker.
 * Needs a build (`pnpm -r build`): it refuses a dist older than its sources.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The image the consumer's docker sandbox pulls and runs (and its checkpoint helper): the test
 * image as scripts/provision-registry.sh pushed it to the registry on this machine, never another.
 */
const DOCKER_IMAGE = `127.0.0.1:${process.env.AGENTBOX_REGISTRY_PORT ?? '5000'}/agentbox/busybox:test`;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./packed-consumer', import.meta.url));
const execFileAsync = promisify(execFile);

// A clean environment: the npm_* and PNPM variables of the pnpm that runs vitest must not steer npm.
const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
for (const name of Object.keys(env)) if (/^(npm_|pnpm_)/i.test(name)) delete env[name];

async function run(command: string, args: string[], cwd: string, timeout = 300_000) {
  try {
    return await execFileAsync(command, args, { cwd, env, timeout, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, { cause: error });
  }
}

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  devDependencies?: Record<string, string>;
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;

/** The newest modification time under `dir` (0 when it does not exist). */
async function newest(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  let latest = 0;
  for (const entry of entries)
    if (entry.isFile()) latest = Math.max(latest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  return latest;
}

/** Publishable package directories, refusing a missing or stale build (it would test old code). */
async function publishablePackages(): Promise<Manifest[]> {
  const found: Manifest[] = [];
  for (const entry of (await readdir(join(ROOT, 'packages'))).sort()) {
    const dir = join(ROOT, 'packages', entry);
    const manifest = await readJson<Manifest>(join(dir, 'package.json'));
    if (manifest.private) continue;
    const built = await stat(join(dir, 'dist', 'index.js')).then(
      (s) => s.mtimeMs,
      () => 0,
    );
    if (built === 0 || built < (await newest(join(dir, 'src'))))
      throw new Error(`${manifest.name}: dist is missing or older than src; run \`npm run build\` first`);
    found.push(manifest);
  }
  return found;
}

/** Why docker cannot be used here, or undefined when it can. */
async function dockerUnavailable(): Promise<string | undefined> {
  try {
    await execFileAsync('docker', ['version', '--format', '{{.Server.Version}}'], { env, timeout: 20_000 });
    return undefined;
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    return (stderr || message).trim().split('\n')[0];
  }
}

let project = '';
let skipDocker: string | undefined;

beforeAll(async () => {
  const packages = await publishablePackages();
  project = await mkdtemp(join(tmpdir(), 'agentbox-consumer-'));
  const tarballs = join(project, 'tarballs');
  await mkdir(tarballs);
  const started = performance.now();
  // One recursive pack (one pnpm start) for all of them; a tarball is named after its package.
  const filters = packages.flatMap(({ name }) => ['--filter', name]);
  await run(
    'bash',
    [join(ROOT, 'scripts', 'pnpm.sh'), '-r', ...filters, 'pack', '--pack-destination', tarballs],
    ROOT,
  );
  const deps: Record<string, string> = {};
  for (const { name, version } of packages) {
    const file = `${name.replace(/^@/, '').replace('/', '-')}-${version}.tgz`;
    await stat(join(tarballs, file));
    deps[name] = `file:./tarballs/${file}`;
  }
  const packed = performance.now();
  // The workspace's own TypeScript and Node types, so the consumer compiles with what we test with;
  // and its vitest, the peer of @agentbox/conformance (else npm picks the newest, whose peers may clash).
  const root = await readJson<Manifest>(join(ROOT, 'package.json'));
  const manifest = {
    name: 'agentbox-consumer',
    private: true,
    type: 'module',
    dependencies: deps,
    devDependencies: {
      typescript: root.devDependencies!.typescript!,
      '@types/node': root.devDependencies!['@types/node']!,
      vitest: root.devDependencies!.vitest!,
    },
    // The packages depend on each other by version: point those at the tarballs, never the registry.
    overrides: deps,
  };
  await writeFile(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await cp(FIXTURE, join(project, 'src'), { recursive: true });
  const strict = {
    target: 'ES2022',
    strict: true,
    skipLibCheck: false,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitOverride: true,
    types: ['node'],
  };
  const tsconfig = (name: string, options: Record<string, unknown>) =>
    writeFile(
      join(project, name),
      JSON.stringify({ compilerOptions: { ...strict, ...options }, include: ['src'] }, null, 2),
    );
  await tsconfig('tsconfig.node16.json', { module: 'node16', moduleResolution: 'node16', outDir: 'dist' });
  await tsconfig('tsconfig.bundler.json', { module: 'esnext', moduleResolution: 'bundler', noEmit: true });
  // --ignore-scripts: ssh2's optional native addon would try to compile (and fetch headers).
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'], project);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  console.info(
    `packed consumer: ${packages.length} packages packed in ${seconds(packed - started)}, npm install in ${seconds(performance.now() - packed)} (${project})`,
  );
  skipDocker = await dockerUnavailable();
}, 600_000);

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

describe('the packed packages in a fresh npm project', () => {
  it('installed every package from its tarball, none from the registry', async () => {
    const { stdout } = await run('npm', ['ls', '--all', '--json'], project);
    const tree = JSON.parse(stdout) as { dependencies: Record<string, { resolved?: string }> };
    const ours = Object.entries(tree.dependencies).filter(([name]) => name.startsWith('@agentbox/'));
    expect(ours.length).toBeGreaterThanOrEqual(4);
    for (const [name, dep] of ours) expect(dep.resolved, name).toMatch(/^file:/);
  });

  it('ships type declarations that name neither dockerode nor ssh2 (their @types are not dependencies)', async () => {
    const offenders: string[] = [];
    const scope = join(project, 'node_modules', '@agentbox');
    for (const pkg of await readdir(scope)) {
      const dist = join(scope, pkg, 'dist');
      for (const file of await readdir(dist)) {
        if (!/\.d\.c?ts$/.test(file)) continue;
        const text = await readFile(join(dist, file), 'utf8');
        if (/from ['"](dockerode|ssh2|docker-modem)['"]|import\(['"](dockerode|ssh2)['"]\)/.test(text))
          offenders.push(`${pkg}/dist/${file}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  const tsc = (config: string) =>
    run('node', [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', config], project);

  // The node16 build also emits dist/main.js, which the run cases need (compiled once).
  let emitted: Promise<unknown> | undefined;
  const compileNode16 = () => {
    emitted ??= tsc('tsconfig.node16.json');
    return emitted;
  };

  it('compiles a strict consumer (skipLibCheck off) with moduleResolution node16', async () => {
    await compileNode16();
  }, 180_000);

  it('compiles the same consumer with moduleResolution bundler', async () => {
    await tsc('tsconfig.bundler.json');
  }, 180_000);

  it('refuses a misspelt config key at compile time', async () => {
    // The same file without the @ts-expect-error must fail, with the key TypeScript suggests.
    // The declarations are checked by the cases above: this compile skips them, to be quick.
    const source = await readFile(join(project, 'src', 'types.ts'), 'utf8');
    const bare = source.replace(/^\s*\/\/ @ts-expect-error `imag`.*\n/m, '\n');
    expect(bare).not.toBe(source);
    await mkdir(join(project, 'misspelt'), { recursive: true });
    await writeFile(join(project, 'misspelt', 'types.ts'), bare);
    const config = {
      extends: './tsconfig.bundler.json',
      compilerOptions: { skipLibCheck: true },
      include: ['misspelt'],
    };
    await writeFile(join(project, 'tsconfig.misspelt.json'), JSON.stringify(config));
    await expect(tsc('tsconfig.misspelt.json')).rejects.toThrow(
      /types\.ts\(\d+,\d+\): error TS2561: [^\n]*'imag' does not exist in type[^\n]*Did you mean to write 'image'\?/,
    );
  }, 180_000);

  const consumer = async (...args: string[]) => {
    await compileNode16();
    const { stdout } = await run('node', [join('dist', 'main.js'), ...args], project, 120_000);
    return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  };
  const expected = (kind: string) => ({
    kind,
    exitCode: 0,
    stdout: 'hello from the sandbox\n',
    restored: '# plan\n',
    misspeltKey: 'INVALID_ARGUMENT',
  });

  it('runs on the local backend', async () => {
    expect(await consumer('local')).toEqual(expected('local'));
  }, 120_000);

  it('closes the sandbox at the end of an `await using` block (compiled by tsc, on this Node)', async () => {
    await compileNode16();
    const { stdout } = await run('node', [join('dist', 'disposable.js')], project, 120_000);
    expect(JSON.parse(stdout.trim())).toEqual({ inside: 'inside the block\n', after: 'SANDBOX_CLOSED' });
  }, 120_000);

  it('runs on the docker backend, pulling its image from the registry on this machine', async (ctx) => {
    if (skipDocker) {
      console.info(`packed consumer on docker: skipped, docker is not available here (${skipDocker})`);
      ctx.skip();
    }
    expect(await consumer('docker', DOCKER_IMAGE)).toEqual(expected('docker'));
  }, 180_000);
});
