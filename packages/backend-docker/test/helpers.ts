/** Shared by the docker tests: a label that marks this run's objects, and a way to list them. */
import Docker from 'dockerode';

/** Every sandbox a test file opens carries this label, so leftovers and sweeps see only this run. */
export const RUN_LABEL = 'agentbox.test-run';
export const runId = `${process.pid}-${Date.now().toString(36)}`;

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
