/**
 * The process scripts/crash.ts SIGKILLs: it re-attaches to one sandbox by id and writes a state,
 * checkpoints it and rolls back to the oldest checkpoint, in a loop, printing a line as each
 * step starts and ends. State k is FILES files `d/f<i>` holding `k <i>`.
 * Usage: crash-child.ts SPEC FIRST_STATE FILES, SPEC being JSON `{ core, module, open }`: the URL
 * of the test's `@agentbox/core` (this file is outside every package), the backend module to
 * import (it registers the backend) and the spec of openSandbox (with `id`).
 */
import type * as Core from '@agentbox/core';

const [spec, first, files] = process.argv.slice(2);
const { core, module, open } = JSON.parse(spec!) as { core: string; module: string; open: Core.SandboxSpec };
const { openSandbox } = (await import(core)) as typeof Core;
await import(module);
const say = (line: string) => process.stdout.write(`${line}\n`);
const sb = await openSandbox(open);
say('ready');
for (let k = Number(first); ; k++) {
  say(`w ${k}`);
  await sb.exec([
    'sh',
    '-c',
    'mkdir -p d && i=0; while [ $i -lt "$2" ]; do echo "$1 $i" > d/f$i; i=$((i+1)); done',
    'sh',
    String(k),
    files!,
  ]);
  say(`c ${k}`);
  const info = await sb.checkpoint({ label: String(k) });
  say(`C ${k} ${info.id}`);
  const [oldest, second] = await sb.listCheckpoints();
  if (oldest && second) {
    say(`b ${oldest.label} ${oldest.id}`);
    await sb.rollback(oldest.id);
    say(`R ${oldest.label} ${oldest.id}`);
  }
}
