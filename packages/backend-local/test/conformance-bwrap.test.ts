import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll } from 'vitest';
import '../src/index.js';
import { bwrapMissing } from './bwrap-available.js';

// The whole suite again, every sandbox in its own bubblewrap jail.
const root = mkdtempSync(join(tmpdir(), 'agentbox-local-bwrap-conformance-'));
afterAll(() => rm(root, { recursive: true, force: true }));

if (bwrapMissing) console.warn(`skipping the bubblewrap conformance run: ${bwrapMissing}`);
else
  runConformance({
    name: 'local (bwrap)',
    open: (opts) => openSandbox({ backend: 'local', config: { root, isolation: 'bwrap' } }, opts),
    leftovers: () => readdir(root),
    // The jail's PID namespace ends every process at close; a timeout reaches the command's group
    // and whoever holds its output, not an escape that let go of it.
    escapedProcessesDie: 'close',
  });
