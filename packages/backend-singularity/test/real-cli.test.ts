import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll, describe, it } from 'vitest';
import { findCli } from '../src/index.js';

// The suite against a real apptainer or singularity, wherever one is on PATH. The image is
// AGENTBOX_SINGULARITY_IMAGE (a SIF file or sandbox directory with /bin/sh and busybox-level tools).
const cli = findCli(undefined, process.env.PATH ?? '');
const image = process.env.AGENTBOX_SINGULARITY_IMAGE;
const why =
  typeof cli === 'string'
    ? `no real CLI: ${cli}`
    : image === undefined
      ? `${cli.path} found, but AGENTBOX_SINGULARITY_IMAGE (the image to run) is not set`
      : undefined;

if (why !== undefined || typeof cli === 'string' || image === undefined) {
  console.warn(`skipping the conformance run against a real apptainer/singularity: ${why}`);
  describe('conformance against a real apptainer/singularity', () => {
    it.skip(`skipped: ${why}`, () => {});
  });
} else {
  const root = mkdtempSync(join(tmpdir(), 'agentbox-singularity-real-'));
  afterAll(() => rm(root, { recursive: true, force: true }));
  runConformance({
    name: `singularity (${cli.flavour} at ${cli.path})`,
    open: (opts) => openSandbox({ backend: 'singularity', config: { binary: cli.path, image, root } }, opts),
    leftovers: () => readdir(root),
    escapedProcessesDie: 'close',
    skip: {
      'tamper.setsid-escape-timeout':
        "singularity's timeout signals the command's process group only, not a process that left it while holding its output; that one dies at close, with the instance",
    },
  });
}
