/**
 * Every TypeScript example in the READMEs type-checks against the packages as a user gets them:
 * the built `dist` type declarations reached through each package's `exports`, with no path
 * mapping to the sources and no `skipLibCheck`, in a strict project.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXAMPLES = join(ROOT, 'examples');
const run = promisify(execFile);

/** The ```ts blocks of a markdown file. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

async function readmes(): Promise<string[]> {
  const packages = await readdir(join(ROOT, 'packages'));
  return ['README.md', ...packages.sort().map((name) => join('packages', name, 'README.md'))];
}

describe('README examples', () => {
  it('type-check in a strict project against the built packages', async () => {
    // Inside examples/ so that the workspace packages resolve from its node_modules.
    const dir = join(EXAMPLES, '.tmp', 'readme');
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const files: string[] = [];
    const writes: Promise<void>[] = [];
    for (const readme of await readmes()) {
      const text = await readFile(join(ROOT, readme), 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      tsBlocks(text).forEach((code, i) => {
        const name = `${readme.replaceAll('/', '_').replace(/\.md$/, '')}_${i + 1}.ts`;
        files.push(name);
        writes.push(writeFile(join(dir, name), `${code}\nexport {};\n`));
      });
    }
    // Every example on disk before tsc reads them (an unawaited write lost this race under load).
    await Promise.all(writes);
    expect(files.length).toBeGreaterThanOrEqual(8);
    await writeFile(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023', 'ESNext.Disposable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files,
      }),
    );
    await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n');
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(process.execPath, [tsc, '-p', dir], { cwd: dir }).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? String(error),
    );
    expect(result.replaceAll(`${relative(ROOT, dir)}/`, ''), 'tsc errors').toBe('');
  }, 120_000);
});
