import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll } from 'vitest';
import '../src/index.js';

// Every sandbox of this run lives under one root, so `leftovers` can list exactly what exists.
const root = mkdtempSync(join(tmpdir(), 'agentbox-local-conformance-'));
afterAll(() => rm(root, { recursive: true, force: true }));

runConformance({
  name: 'local',
  open: (opts) => openSandbox({ backend: 'local', config: { root } }, opts),
  leftovers: () => readdir(root),
});
