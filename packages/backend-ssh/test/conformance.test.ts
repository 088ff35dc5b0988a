import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll, describe, it } from 'vitest';
import '../src/index.js';
import { sshCli, sshConfig } from './sshd.ts';

// Every sandbox of this run lives under one remote root, so `leftovers` lists exactly what exists.
const name = `conformance-${process.pid}-${Date.now().toString(36)}`;
const root = `~/.agentbox/${name}`;
const remoteRoot = `"$HOME/.agentbox/${name}"`;
afterAll(() => sshCli(`rm -rf ${remoteRoot}`));

// The whole suite runs once: the second Node.js pass of scripts/test-all.sh skips it (the
// package's other tests run the backend on that Node too).
if (process.env.AGENTBOX_TEST_PASS === 'second') {
  console.info('ssh conformance: skipped in the second Node.js pass (it ran in the first)');
  describe.skip('ssh conformance', () => it('ran in the first pass', () => {}));
} else {
  const spec = { backend: 'ssh', config: sshConfig({ root }) } as const;
  runConformance({
    name: 'ssh',
    // The login user is agentbox-a, not root, so the permission cases apply.
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    // One login user runs every sandbox, each in its own bubblewrap jail on the host (the test
    // host has bubblewrap): neither processes nor files of one are visible to another.
    leftovers: async () =>
      (await sshCli(`ls -1 ${remoteRoot} 2>/dev/null; true`)).split('\n').filter(Boolean),
    // The jail's PID namespace ends every process at close; a timeout reaches the command's group
    // and whoever holds its output, not an escape that let go of it.
    escapedProcessesDie: 'close',
  });
}
