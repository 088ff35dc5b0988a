/** What every container of the backend shares: its PID 1, and the rule that images are never pulled. */
import { InvalidArgumentError } from '@agentbox/core';
import type { ErrorContext } from '@agentbox/core/backend';
import { type DockerClient, dockerError, statusOf } from './client.js';

/** PID 1 of our containers: a shell that reaps orphaned processes and exits on SIGTERM. */
export const REAPER = ['/bin/sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait; done"];

/** The image must already be on the daemon: agentbox never pulls. */
export async function requireImage(
  client: DockerClient,
  image: string,
  context: ErrorContext,
): Promise<void> {
  try {
    await client.docker.getImage(image).inspect();
  } catch (error) {
    if (statusOf(error) === 404)
      throw new InvalidArgumentError(
        `image ${image} is not on the Docker daemon at ${client.address}, and agentbox never pulls: build or load it first (for the default test image, run scripts/provision-docker.sh)`,
        { ...context, issues: [`config.image: ${image} not found locally`], cause: error },
      );
    throw dockerError(error, context, client.address);
  }
}
