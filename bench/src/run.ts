/**
 * Runs every benchmark group, or those named: `pnpm bench -- local docker`; `--list` names them.
 * Each prints JSON lines `{bench, backend, value, unit, baseline, baselineValue, ratio}` on stdout.
 * A group loads its backend by kind (core's discovery); this file lists benchmark groups, not backends.
 */
export {};

const all: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  local: () => import('./local.js'),
  docker: () => import('./docker.js'),
  ssh: () => import('./ssh.js'),
  singularity: () => import('./singularity.js'),
  daytona: () => import('./daytona.js'),
  vercel: () => import('./vercel.js'),
  modal: () => import('./modal.js'),
  transfer: () => import('./transfer.js'),
  checkpoints: () => import('./checkpoint-curve.js'),
  density: () => import('./density.js'),
  isolation: () => import('./isolation.js'),
  load: () => import('./load.js'),
  workload: () => import('./workload.js'),
};

const wanted = process.argv.slice(2).filter((a) => a !== '--');
if (wanted.includes('--list')) {
  console.log(Object.keys(all).join('\n'));
  process.exit(0);
}
for (const name of wanted.length ? wanted : Object.keys(all)) {
  const load = all[name];
  if (!load) throw new Error(`unknown benchmark "${name}"; known: ${Object.keys(all).join(', ')}`);
  await (await load()).run();
}
