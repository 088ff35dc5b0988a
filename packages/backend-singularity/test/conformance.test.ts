import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll, describe, it } from 'vitest';
import '../src/index.js';
import { busyboxRootfs, STANDIN, standinMissing, useStandinState } from './standin.ts';

// The whole suite against the apptainer stand-in: every sandbox a real instance (namespaces,
// an overlay over a busybox root) under one root, so `leftovers` lists exactly what exists.
// The whole suite runs once per backend: the second Node.js pass of scripts/test-all.sh skips it
// (the backend's other tests still run on that Node).
const secondPass = process.env.AGENTBOX_TEST_PASS === 'second';
if (secondPass) {
  console.info('singularity conformance: skipped in the second Node.js pass (it ran in the first)');
  describe.skip('singularity (stand-in) conformance', () => it('ran in the first pass', () => {}));
} else if (standinMissing) console.warn(`skipping the singularity conformance run: ${standinMissing}`);
else {
  const root = mkdtempSync(join(tmpdir(), 'agentbox-singularity-conformance-'));
  const state = useStandinState();
  const image = busyboxRootfs();
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(state, { recursive: true, force: true });
  });
  const spec = { backend: 'singularity', config: { binary: STANDIN, image, root } } as const;
  runConformance({
    name: 'singularity (stand-in)',
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    leftovers: async () => [...(await readdir(root)), ...(await readdir(state))],
    // The instance's PID namespace ends every process at close; a timeout reaches the command's
    // group and whoever holds its output, not an escape that let go of it.
    escapedProcessesDie: 'close',
  });
}
