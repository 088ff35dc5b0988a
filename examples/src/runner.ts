/**
 * The example runner: open a sandbox, let "the agent" work in it, checkpoint, make a destructive
 * mistake, roll back, and show what happened at each step.
 *
 *   pnpm demo                      # local backend: no account, no network
 *   pnpm demo -- --backend docker  # a hardened container (needs a running dockerd)
 */
import { parseArgs } from 'node:util';
import { openSandbox, type SandboxBackend } from '@agentbox/core';
import '@agentbox/backend-local';

const { values } = parseArgs({
  options: { backend: { type: 'string', default: 'local' } },
});
const backend = values.backend!;
if (backend === 'docker') await import('@agentbox/backend-docker');

const step = (title: string) => console.log(`\n\x1b[1m▸ ${title}\x1b[0m`);

async function run(sb: SandboxBackend, command: string): Promise<void> {
  const r = await sb.exec(command, { timeoutMs: 30_000 });
  console.log(`$ ${command}`);
  if (r.stdout) process.stdout.write(indent(r.stdout));
  if (r.stderr) process.stdout.write(indent(r.stderr));
  console.log(`  (exit ${r.exitCode}, ${r.durationMs.toFixed(1)} ms)`);
}

const indent = (text: string) => `${text.replace(/\n$/, '').replace(/^/gm, '  │ ')}\n`;

step(`open a ${backend} sandbox`);
await using sb = await openSandbox({ backend });
console.log(`  id ${sb.id}, working directory ${sb.workdir}, isolation: ${sb.capabilities.isolation}`);
const enforced = Object.entries(sb.enforcement)
  .filter(([, s]) => s.status === 'enforced')
  .map(([c]) => c);
console.log(
  `  policy controls enforced: ${enforced.length ? enforced.join(', ') : 'none (this backend isolates nothing)'}`,
);

step('the agent sets up a project');
await sb.writeFile('project/README.md', '# notes\nThe agent keeps its work here.\n');
await sb.writeFile('project/src/app.sh', '#!/bin/sh\necho "hello from the app"\n', { mode: 0o755 });
await run(sb, 'cd project && ./src/app.sh && ls -la src');

step('checkpoint');
const before = await sb.checkpoint({ label: 'before cleanup' });
console.log(`  checkpoint ${before.id}: ${before.entries} entries, ${before.bytesStored} bytes stored`);

step('a destructive mistake: the agent "cleans up"');
await run(sb, 'rm -rf project/src && echo "oops" > project/README.md && ls -R project');

step('roll back');
await sb.rollback(before);
await run(sb, 'cat project/README.md && ./project/src/app.sh');

step('timeouts kill the whole process tree and the sandbox stays usable');
const started = Date.now();
await sb.exec('sleep 30 & sleep 31; echo never', { timeoutMs: 500 }).catch((error) => {
  console.log(`  ${error.code}: ${error.message} (after ${Date.now() - started} ms)`);
});
await run(sb, 'echo still here');

step('done');
console.log(`  checkpoints: ${(await sb.listCheckpoints()).map((c) => `${c.id} (${c.label})`).join(', ')}`);
