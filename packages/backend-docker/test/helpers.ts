/** Shared by the docker tests: the image, a label that marks this run's objects, and a way to list them. */
import Docker from 'dockerode';
import { sessionRunId } from '../../../scripts/leak-check.ts';

/** The image scripts/provision-docker.sh builds (global-setup.ts runs it with the same variable). */
export const TEST_IMAGE = process.env.AGENTBOX_DOCKER_IMAGE ?? 'agentbox/busybox:test';

/** Every test opens its sandboxes from the local test image, and never pulls (no registry is reached). */
export const TEST_CONFIG = { image: TEST_IMAGE, helperImage: TEST_IMAGE, pull: 'never' } as const;

/** Every sandbox a test file opens carries this label, so leftovers and sweeps see only this run. */
export const RUN_LABEL = 'agentbox.test-run';
/** Starts with the session id of the leak check (global-setup.ts), which looks for this run's objects by it. */
export const runId = sessionRunId();

export const docker = new Docker();

/** Containers, volumes and networks of this run, as `type:name`. */
export async function runObjects(run = runId): Promise<string[]> {
  const filters = JSON.stringify({ label: [`${RUN_LABEL}=${run}`] });
  const [containers, volumes, networks] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listVolumes({ filters }),
    docker.listNetworks({ filters }),
  ]);
  return [
    ...containers.map((c) => `container:${(c.Names[0] ?? c.Id).replace(/^\//, '')}`),
    ...(volumes.Volumes ?? []).map((v) => `volume:${v.Name}`),
    ...networks.map((n) => `network:${n.Name}`),
  ].sort();
}

/** Why the runsc tests cannot run here (undefined: the daemon has gVisor registered as `runsc`). */
export async function runscMissing(): Promise<string | undefined> {
  const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
  if (info.Runtimes?.runsc) return undefined;
  return `the docker daemon has no runsc runtime (it has ${Object.keys(info.Runtimes ?? {}).join(', ')}); scripts/provision-gvisor.sh registers it`;
}
