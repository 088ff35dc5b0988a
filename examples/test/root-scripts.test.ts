/**
 * The README's root commands work on a machine with Node and npm but no global pnpm: each root
 * script reaches pnpm only through scripts/pnpm.sh (the pinned version, fetched by npx).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { appendFile, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** PATH without any directory that holds a pnpm (pnpm itself, or a package manager shim). */
function pathWithoutPnpm(): string {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return dirs
    .filter((dir) => {
      try {
        readFileSync(join(dir, 'pnpm'));
        return false;
      } catch {
        return !dir.includes('node_modules');
      }
    })
    .join(delimiter);
}

const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathWithoutPnpm() };
for (const name of Object.keys(env)) if (name.startsWith('npm_') || name.startsWith('PNPM')) delete env[name];

async function npmRun(...args: string[]) {
  return run('npm', ['run', '--silent', ...args], { cwd: ROOT, env, maxBuffer: 64 * 1024 * 1024 });
}

// These test npm scripts, not the runtime: the second pass of scripts/test-all.sh (another Node) skips them.
const secondPass = process.env.AGENTBOX_TEST_PASS === 'second';
if (secondPass) console.info('root scripts: skipped in the second Node.js pass (they ran in the first)');

describe.skipIf(secondPass)('root scripts without a global pnpm', () => {
  it('the test machine really has no pnpm on this PATH', async () => {
    await expect(run('sh', ['-c', 'command -v pnpm'], { env })).rejects.toThrow();
  });

  it('no root script calls a bare pnpm', () => {
    const scripts: Record<string, string> = JSON.parse(
      readFileSync(join(ROOT, 'package.json'), 'utf8'),
    ).scripts;
    for (const [name, text] of Object.entries(scripts))
      expect(
        text.split(/&&|\|\||;/).map((part) => part.trim().split(/\s+/)[0]),
        name,
      ).not.toContain('pnpm');
  });

  it('npm run demo installs, builds and runs the example runner to the end', async () => {
    const { stdout } = await npmRun('demo');
    // The script ends at its own step budget, after the whole story (runner.test.ts checks each part).
    expect(stdout.replaceAll(/\x1b\[[0-9;]*m/g, '')).toContain(
      '(the script had more to do: its budget of 13 steps stopped it)',
    );
    // Run again with nothing changed: no install, no build, straight to the runner.
    const again = await npmRun('demo');
    expect(again.stderr).toBe('bootstrap: dependencies up to date\nbootstrap: packages up to date\n');
    expect(again.stdout).toMatch(/^▸ open a local sandbox\n/);
  }, 600_000);

  it('npm run bench -- --list names the benchmark groups', async () => {
    const { stdout } = await npmRun('bench', '--', '--list');
    expect(stdout.trim().split('\n')).toEqual(expect.arrayContaining(['local', 'docker', 'ssh']));
  }, 600_000);

  it('npm run lint runs biome', async () => {
    const { stdout, stderr } = await npmRun('lint');
    expect(`${stdout}${stderr}`).toMatch(/Checked \d+ files?/);
  }, 120_000);
});

/**
 * scripts/bootstrap.sh in a workspace of its own (two packages, b depending on a, whose builds log
 * themselves): it installs and builds only what changed, and stays right after every kind of edit.
 */
describe.skipIf(secondPass)('bootstrap builds only what changed', () => {
  const BUILD = `import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
const name = JSON.parse(readFileSync('package.json', 'utf8')).name;
const source = readFileSync('src/index.ts', 'utf8');
if (source.includes('BROKEN')) { console.error(name + ': broken source'); process.exit(1); }
mkdirSync('dist', { recursive: true });
writeFileSync('dist/index.js', source);
appendFileSync('../../build.log', name + '\\n');
`;

  async function workspace(): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), 'agentbox-bootstrap-'));
    await mkdir(join(root, 'scripts'));
    for (const script of ['bootstrap.sh', 'lib.sh', 'build-state.mjs'])
      await copyFile(join(ROOT, 'scripts', script), join(root, 'scripts', script));
    await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'fixture', private: true }));
    await writeFile(join(root, 'pnpm-workspace.yaml'), 'packages:\n  - packages/*\n');
    await writeFile(join(root, 'tsconfig.base.json'), '{}\n');
    for (const [name, deps] of [
      ['a', {}],
      ['b', { a: 'workspace:*' }],
    ] as const) {
      const dir = join(root, 'packages', name);
      await mkdir(join(dir, 'src'), { recursive: true });
      await writeFile(
        join(dir, 'package.json'),
        JSON.stringify({
          name,
          version: '1.0.0',
          main: 'dist/index.js',
          scripts: { build: 'node build.mjs' },
          dependencies: deps,
        }),
      );
      await writeFile(join(dir, 'build.mjs'), BUILD);
      await writeFile(join(dir, 'src', 'index.ts'), `export const name = '${name}';\n`);
      await writeFile(join(dir, 'README.md'), `# ${name}\n`);
    }
    await run('npx', ['--yes', 'pnpm@12.4.2', 'install', '--lockfile-only'], { cwd: root, env });
    return root;
  }

  /** Run bootstrap; what it said, and which packages it built (in order). */
  async function bootstrap(root: string): Promise<{ said: string; built: string[] }> {
    const before = await readFile(join(root, 'build.log'), 'utf8').catch(() => '');
    const { stderr } = await run('bash', [join(root, 'scripts', 'bootstrap.sh')], { cwd: root, env });
    const after = await readFile(join(root, 'build.log'), 'utf8').catch(() => '');
    return { said: stderr, built: after.slice(before.length).split('\n').filter(Boolean) };
  }

  it('skips an up-to-date install and build, and rebuilds exactly what an edit touches', async () => {
    const root = await workspace();
    try {
      const first = await bootstrap(root);
      expect(first.said).toContain('bootstrap: installing dependencies');
      expect(first.built).toEqual(['a', 'b']);

      const idle = await bootstrap(root);
      expect(idle).toEqual({
        said: 'bootstrap: dependencies up to date\nbootstrap: packages up to date\n',
        built: [],
      });

      // A source edit in b rebuilds b alone; one in a rebuilds a and its dependent b.
      await appendFile(join(root, 'packages/b/src/index.ts'), '// edited\n');
      expect((await bootstrap(root)).built).toEqual(['b']);
      await appendFile(join(root, 'packages/a/src/index.ts'), '// edited\n');
      expect((await bootstrap(root)).built).toEqual(['a', 'b']);
      // So does a change to the shared build config; docs change nothing.
      await writeFile(join(root, 'tsconfig.base.json'), '{ "compilerOptions": {} }\n');
      expect((await bootstrap(root)).built).toEqual(['a', 'b']);
      await appendFile(join(root, 'packages/a/README.md'), 'more docs\n');
      expect((await bootstrap(root)).built).toEqual([]);

      // A missing dist is rebuilt even though the sources did not change.
      await rm(join(root, 'packages/a/dist'), { recursive: true });
      expect((await bootstrap(root)).built).toEqual(['a']);

      // A failed build is not recorded as built: after the fix it builds again.
      await appendFile(join(root, 'packages/b/src/index.ts'), '// BROKEN\n');
      await expect(bootstrap(root)).rejects.toThrow();
      await writeFile(join(root, 'packages/b/src/index.ts'), "export const name = 'b';\n");
      expect((await bootstrap(root)).built).toEqual(['b']);

      // A changed manifest installs again (and, as a build input, rebuilds its package).
      const manifest = join(root, 'packages/b/package.json');
      await writeFile(
        manifest,
        JSON.stringify({ ...JSON.parse(await readFile(manifest, 'utf8')), description: 'b' }),
      );
      const reinstalled = await bootstrap(root);
      expect(reinstalled.said).toContain('bootstrap: installing dependencies');
      expect(reinstalled.built).toEqual(['b']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 300_000);
});
