/** Labels and annotations on everything the backend creates: what sweep and re-attach look for. */
import { hostname, userInfo } from 'node:os';

export const MANAGED_LABEL = 'agentbox.dev/managed';
/** The agentbox sandbox id. */
export const ID_LABEL = 'agentbox.dev/sandbox-id';
/** What the object is for: sandbox, egress, checkpoint-key, credentials. */
export const ROLE_LABEL = 'agentbox.dev/role';
export const OWNER_ANNOTATION = 'agentbox.dev/owner';
export const WORKDIR_ANNOTATION = 'agentbox.dev/workdir';
/** On a warm pool's template, pool, NetworkPolicy and pods: the pool's name. */
export const WARM_POOL_LABEL = 'agentbox.dev/warm-pool';

/** Object names from a sandbox id (ids are lowercase; Kubernetes names must be). */
export const names = {
  pod: (id: string) => `agentbox-${id.toLowerCase()}`,
  egress: (id: string) => `agentbox-${id.toLowerCase()}-egress`,
  key: (id: string) => `agentbox-${id.toLowerCase()}-key`,
  credentials: (id: string) => `agentbox-${id.toLowerCase()}-credentials`,
  /** In mode `claim`, the SandboxClaim (its pod is named by the pool). */
  claim: (id: string) => `agentbox-${id.toLowerCase()}`,
};

export function defaultOwner(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry: keep "unknown"
  }
  return `${user}@${hostname()}`;
}

export function labelsFor(id: string, role: string, extra: Record<string, string>): Record<string, string> {
  return { ...extra, [MANAGED_LABEL]: 'true', [ID_LABEL]: id.toLowerCase(), [ROLE_LABEL]: role };
}
