/**
 * A realistic workload: a workspace that is a git project with a `node_modules`-sized tree of
 * small files (30,000 by default: BENCH_WORKLOAD_DEPS), checkpointed after a branch switch and
 * after a dependency change, then rolled back to where it started. Each figure beside a warm
 * `cp -a` of the project and beside `git stash` (push of the same number of changed files for
 * a checkpoint, pop for the rollback), all run through the sandbox's own exec in the same run.
 * Runs where the sandbox has git: local and ssh here (BENCH_WORKLOAD_BACKENDS), and docker in
 * an image built here from the test image and this host's git (git-image.sh; no registry is
 * reachable to pull one).
 */
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxBackend } from '@agentbox/core';
import { type Opener, openers } from './checkpoint-curve.js';
import { report, skip, timeMs } from './harness.js';
import { loadNote } from './tree.js';

const gitImage = join(dirname(fileURLToPath(import.meta.url)), '../git-image.sh');
const deps = Number(process.env.BENCH_WORKLOAD_DEPS ?? 30_000);
const SOURCES = 1_000;
/** Source files the feature branch changes, and adds. */
const CHANGED = 100;
const ADDED = 20;

/** `sh -c SETUP sh SOURCES DEPS CHANGED ADDED`: the project, its two branches, main checked out. */
const SETUP = `set -e
mkdir project && cd project
git init -q
git checkout -q -b main
git config user.email bench@agentbox.invalid && git config user.name bench && git config commit.gpgsign false
printf 'node_modules/\\n' > .gitignore
printf '{ "name": "app", "dependencies": { "p0": "1.0.0" } }\\n' > package.json
awk -v src="$1" -v deps="$2" 'BEGIN {
  srand(11); pad = sprintf("%0900d", 0)
  for (i = 0; i < src; i++) {
    d = "src/m" int(i / 50); if (!(d in made)) { system("mkdir -p " d); made[d] = 1 }
    f = d "/f" i ".ts"; printf "export const v%d = %d;\\n// %s\\n", i, i, pad > f; close(f)
  }
  for (i = 0; i < deps; i++) {
    d = "node_modules/p" int(i / 75) "/lib"; if (!(d in made)) { system("mkdir -p " d); made[d] = 1 }
    f = d "/f" i ".js"; printf "module.exports = %d; // %d %s\\n", i, rand() * 1e9, pad > f; close(f)
  }
}'
git add -A && git commit -qm base
git checkout -q -b feature
i=0; while [ $i -lt "$3" ]; do printf 'export const changed = %s;\\n' $i >> src/m$((i / 50))/f$i.ts; i=$((i + 1)); done
i=0; mkdir -p src/feature; while [ $i -lt "$4" ]; do printf 'export const added = %s;\\n' $i > src/feature/n$i.ts; i=$((i + 1)); done
git add -A && git commit -qm feature
git checkout -q main`;

/** A dependency upgrade: two packages replaced by new versions, one added. */
const UPGRADE = `set -e
cd project
rm -rf node_modules/p3 node_modules/p7
for p in p3 p7 pnew; do
  mkdir -p node_modules/$p/lib
  i=0; while [ $i -lt 60 ]; do printf 'module.exports = "%s v2 %s";\\n' $p $i > node_modules/$p/lib/g$i.js; i=$((i + 1)); done
done
printf '{ "name": "app", "dependencies": { "p0": "2.0.0", "pnew": "1.0.0" } }\\n' > package.json`;

async function must(sb: SandboxBackend, what: string, script: string, ...args: string[]): Promise<string> {
  const r = await sb.exec(['sh', '-c', script, 'sh', ...args], { timeoutMs: 1_800_000 });
  if (r.exitCode !== 0)
    throw new Error(`${sb.kind}: ${what} failed (exit ${r.exitCode}): ${r.stderr.slice(-500)}`);
  return r.stdout;
}

async function workload(backend: string, open: Opener): Promise<void> {
  const sb = await open();
  try {
    if ((await sb.exec('command -v git')).exitCode !== 0) {
      skip(`workload (${backend})`, 'the sandbox has no git');
      return;
    }
    await must(
      sb,
      'making the project',
      SETUP,
      String(SOURCES),
      String(deps),
      String(CHANGED),
      String(ADDED),
    );
    const what = `git project, ${SOURCES} sources, ${deps / 1000}k files in node_modules`;
    // Warm: one untimed copy, then the timed one.
    await must(sb, 'cp -a', 'cp -a project copy && rm -rf copy');
    const copyMs = await timeMs(() => must(sb, 'cp -a', 'cp -a project copy'));
    await must(sb, 'rm', 'rm -rf copy');
    // git stash of as many changed files as the branch switch changes, and its pop.
    await must(
      sb,
      'edits',
      `cd project && i=0; while [ $i -lt ${CHANGED} ]; do echo edit >> src/m$((i / 50))/f$i.ts; i=$((i + 1)); done`,
    );
    const stashMs = await timeMs(() => must(sb, 'git stash', 'cd project && git stash push -q'));
    const popMs = await timeMs(() => must(sb, 'git stash pop', 'cd project && git stash pop -q'));
    await must(sb, 'reset', 'cd project && git checkout -q -- .');
    // Past the incremental stores' racy-mtime window (a file changed within it is hashed again).
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await loadNote(`workload (${backend})`);

    let base: Awaited<ReturnType<SandboxBackend['checkpoint']>> | undefined;
    const firstMs = await timeMs(async () => {
      base = await sb.checkpoint({ label: 'main' });
    });
    await must(sb, 'git checkout feature', 'cd project && git checkout -q feature');
    const branchMs = await timeMs(() => sb.checkpoint({ label: 'feature' }));
    await must(sb, 'the upgrade', UPGRADE);
    const upgradeMs = await timeMs(() => sb.checkpoint({ label: 'upgraded' }));
    const rollbackMs = await timeMs(() => sb.rollback(base!));
    const state = await must(
      sb,
      'checking the rollback',
      'cd project && git rev-parse --abbrev-ref HEAD && git status --porcelain && ls node_modules/p3/lib | wc -l && test ! -e node_modules/pnew && echo ok',
    );
    if (state.replace(/\s+/g, ' ').trim() !== 'main 75 ok')
      throw new Error(`${backend}: the rollback did not bring the project back: ${state}`);

    const copy = {
      backend,
      unit: 'ms',
      baseline: 'cp -a of the project (same exec channel)',
      baselineValue: copyMs,
    } as const;
    report({ ...copy, bench: `first checkpoint, ${what}`, value: firstMs });
    report({
      ...copy,
      bench: `checkpoint after a branch switch (${CHANGED} changed, ${ADDED} added), ${what}`,
      value: branchMs,
    });
    report({
      backend,
      unit: 'ms',
      bench: `checkpoint after a branch switch (${CHANGED} changed, ${ADDED} added), ${what}`,
      value: branchMs,
      baseline: `git stash push of ${CHANGED} changed files`,
      baselineValue: stashMs,
    });
    report({
      ...copy,
      bench: `checkpoint after a dependency upgrade (150 files removed, 180 added), ${what}`,
      value: upgradeMs,
    });
    report({ ...copy, bench: `rollback of both, ${what}`, value: rollbackMs });
    report({
      backend,
      unit: 'ms',
      bench: `rollback of both, ${what}`,
      value: rollbackMs,
      baseline: `git stash pop of ${CHANGED} changed files`,
      baselineValue: popMs,
    });
  } finally {
    await sb.close();
  }
}

export async function run(): Promise<void> {
  const all = await openers(() =>
    execFileSync('bash', [gitImage, process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim(),
  );
  for (const backend of (process.env.BENCH_WORKLOAD_BACKENDS ?? 'local,ssh,docker').split(',')) {
    const open = all[backend];
    if (!open) {
      skip(`workload (${backend})`, 'backend not available here');
      continue;
    }
    await workload(backend, open);
  }
}
