/** Labels on everything the backend creates, so that a sweep can find what a crash leaked. */
import { hostname, userInfo } from 'node:os';

export const LABEL = {
  creator: 'agentbox.creator',
  sandboxId: 'agentbox.sandbox-id',
  created: 'agentbox.created',
  role: 'agentbox.role',
  /** Who opened the sandbox (`config.owner`, default `user@host`): a default sweep touches only its own. */
  owner: 'agentbox.owner',
} as const;

export const CREATOR = 'agentbox';

/** What a labelled object is to its sandbox. */
export type Role =
  | 'sandbox'
  | 'workspace'
  | 'skills'
  | 'checkpoint-helper'
  | 'checkpoint-store'
  | 'network'
  | 'egress-proxy'
  | 'egress-sentinel';

/** The owner label's default: this process's user and host, `alice@laptop`. */
export function defaultOwner(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    // A uid with no passwd entry (common in containers) has no name.
    user = `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return `${user}@${hostname()}`;
}

/** Labels for one object of sandbox `id`: the caller's policy labels, then ours (which win). */
export function labelsFor(
  id: string,
  role: Role,
  createdAt: string,
  extra: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  return {
    ...extra,
    [LABEL.creator]: CREATOR,
    [LABEL.sandboxId]: id,
    [LABEL.created]: createdAt,
    [LABEL.role]: role,
  };
}

/** Docker names of a sandbox's objects. */
export const names = {
  container: (id: string) => `agentbox-${id}`,
  helper: (id: string) => `agentbox-${id}-checkpoints`,
  proxy: (id: string) => `agentbox-${id}-egress`,
  sentinel: (id: string) => `agentbox-${id}-egress-sentinel`,
  sentinelListener: (id: string) => `agentbox-${id}-egress-listener`,
  network: (id: string) => `agentbox-${id}-net`,
  volume: (id: string, role: 'workspace' | 'skills' | 'store') => `agentbox-${id}-${role}`,
};

/** A docker API `filters` value selecting objects of one sandbox (or of every agentbox sandbox). */
export function labelFilter(id?: string, extra: Readonly<Record<string, string>> = {}): string {
  const label = [
    `${LABEL.creator}=${CREATOR}`,
    id === undefined ? LABEL.sandboxId : `${LABEL.sandboxId}=${id}`,
  ];
  for (const [k, v] of Object.entries(extra)) label.push(`${k}=${v}`);
  return JSON.stringify({ label });
}
