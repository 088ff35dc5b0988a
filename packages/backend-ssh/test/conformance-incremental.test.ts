/** The checkpoint cases again, with `checkpoints: 'incremental'` (core's ExecCheckpointStore over SSH). */
import { caseIds, runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll } from 'vitest';
import '../src/index.js';
import { sshCli, sshConfig } from './sshd.ts';

const name = `conformance-incr-${process.pid}-${Date.now().toString(36)}`;
const root = `~/.agentbox/${name}`;
afterAll(() => sshCli(`rm -rf "$HOME/.agentbox/${name}"`));

const skip: Record<string, string> = {};
for (const id of caseIds) {
  if (!id.startsWith('checkpoints.'))
    skip[id] = 'covered by conformance.test.ts (same backend, copy checkpoints)';
}
skip['checkpoints.large-tree'] =
  'the incremental store spends a few processes per new file: a first checkpoint of 10,000 files takes about a minute here';

runConformance({
  name: 'ssh (incremental checkpoints)',
  open: (opts) =>
    openSandbox({ backend: 'ssh', config: sshConfig({ root, checkpoints: 'incremental' }) }, opts),
  skip,
  isolatesProcesses: false,
  isolatesFilesystem: false,
});
