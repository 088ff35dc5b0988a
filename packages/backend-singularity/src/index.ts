/**
 * @agentbox/backend-singularity: each sandbox is one Apptainer (or SingularityCE) instance
 * driven through the `apptainer` / `singularity` command line. See README.md.
 */
import * as fs from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AbortedError, PolicySchema, SandboxUnavailableError } from '@agentbox/core';
import { assertEnforced, defineBackend, type OpenContext, registerBackend } from '@agentbox/core/backend';
import { tidyOverlayAfterCrash } from './checkpoints.js';
import { findCli } from './cli.js';
import {
  instanceName,
  type SingularityConfig,
  SingularityConfigSchema,
  type SingularityResolvedConfig,
} from './config.js';
import { doctorSingularity } from './doctor.js';
import { rootMode, singularityEnforcement } from './enforcement.js';
import { Instance, planInstance } from './instance.js';
import { removeTree, SingularitySandbox } from './sandbox.js';
import { sweepSingularity } from './sweep.js';

export { findCli } from './cli.js';
export {
  type SingularityConfig,
  SingularityConfigSchema,
  type SingularityResolvedConfig,
} from './config.js';
export { singularityEnforcement } from './enforcement.js';
export { SingularitySandbox } from './sandbox.js';

const KIND = 'singularity';

async function openSingularity({
  id,
  idGiven,
  config,
  policy,
  strict,
  signal,
}: OpenContext<SingularityResolvedConfig>) {
  const context = { backend: KIND, operation: 'open', sandboxId: id };
  // Never a silent fallback: without the CLI there is no sandbox, and the error says what to install.
  const cli = findCli(config.binary, process.env.PATH ?? '');
  if (typeof cli === 'string') throw new SandboxUnavailableError(cli, context);
  const uid = process.getuid?.() ?? -1;
  const enforcement = singularityEnforcement(config, policy, uid);
  // Refuse before creating anything, so a refused open leaves nothing behind.
  if (strict) assertEnforced(policy, enforcement, { backend: KIND, sandboxId: id });
  signal?.throwIfAborted();
  const dir = join(resolve(config.root), id);
  const workspace = join(dir, 'workspace');
  const mode = rootMode(config, policy);
  const overlayDir = mode === 'overlay' ? join(dir, 'overlay') : undefined;
  const existed = await fs.stat(workspace).then(
    (st) => st.isDirectory(),
    () => false,
  );
  if (existed && !idGiven)
    throw new SandboxUnavailableError(`sandbox directory ${dir} already exists`, context);
  const plan = planInstance({
    name: instanceName(id),
    config,
    policy,
    workspace,
    overlayDir,
    tmpfs: mode === 'tmpfs',
    context,
  });
  let instance: Instance | undefined;
  const undo = async () => {
    await instance?.stop(context).catch(() => {});
    if (!existed) await removeTree(dir);
  };
  try {
    if (!existed) {
      await fs.mkdir(workspace, { recursive: true, mode: 0o700 });
      await fs.chmod(workspace, 0o755);
      await fs.mkdir(join(dir, 'checkpoints'), { mode: 0o700 });
      if (overlayDir) await fs.mkdir(join(overlayDir, 'upper'), { recursive: true, mode: 0o755 });
      const meta = {
        id,
        createdAt: new Date().toISOString(),
        labels: policy.labels ?? {},
        instance: plan.name,
      };
      await fs.writeFile(join(dir, 'sandbox.json'), `${JSON.stringify(meta)}\n`, { mode: 0o600 });
    }
    if (signal?.aborted) throw new AbortedError('aborted during open', { ...context, cause: signal.reason });
    const running = existed ? await Instance.find(cli, plan, context) : undefined;
    if (!running && existed && overlayDir)
      await tidyOverlayAfterCrash(overlayDir, join(dir, 'checkpoints', 'overlay'));
    instance = running ?? (await Instance.start(cli, plan, context));
    const sandbox = new SingularitySandbox({ id, config, cli, dir, instance, uid, enforcement, overlayDir });
    // The first command should not pay for opening a session; where one cannot open, the pool
    // says why (sessions.unavailableReason) and commands take the plain path.
    await sandbox.sessions.warm();
    if (signal?.aborted) {
      await sandbox.sessions.close();
      throw new AbortedError('aborted during open', { ...context, cause: signal.reason });
    }
    return sandbox;
  } catch (error) {
    await undo();
    throw error;
  }
}

export const singularity = defineBackend({
  kind: KIND,
  configSchema: SingularityConfigSchema,
  open: openSingularity,
  sweep: sweepSingularity,
  // What it can enforce when asked: limits, no network and a read-only root asked for.
  doctor: ({ config }) =>
    doctorSingularity(
      config,
      singularityEnforcement(
        config,
        PolicySchema.parse({
          readOnlyRoot: true,
          limits: { pids: 256, memoryMiB: 2048, cpus: 1 },
          network: { mode: 'none' },
        }),
        process.getuid?.() ?? -1,
      ),
    ),
});
registerBackend(singularity);

// Types `config` in `openSandbox({ backend: 'singularity', config })` for whoever imports this package.
declare module '@agentbox/core' {
  interface BackendConfigs {
    singularity: SingularityConfig;
  }
}
