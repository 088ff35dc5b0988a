/**
 * What the Daytona emulator remembers: sandboxes (each backed by one container), their
 * toolbox sessions, and snapshots (each a committed image).
 */
import type Docker from 'dockerode';
import type { ContainerCommand } from '../docker.js';

export type SandboxState =
  | 'creating'
  | 'started'
  | 'stopping'
  | 'stopped'
  | 'archived'
  | 'snapshotting'
  | 'destroyed'
  | 'error';

export interface SessionCommand {
  id: string;
  command: string;
  exitCode: number | undefined;
  stdout: Buffer[];
  stderr: Buffer[];
  /** Input for a command started with runAsync (sendSessionCommandInput). */
  stdin?: NodeJS.WritableStream;
  done: Promise<void>;
  running?: ContainerCommand;
}

export interface Session {
  id: string;
  commands: Map<string, SessionCommand>;
}

export interface SandboxRecord {
  id: string;
  name: string;
  snapshot: string;
  user: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  cpu: number;
  memory: number;
  disk: number;
  networkBlockAll: boolean;
  state: SandboxState;
  errorReason?: string;
  /** Minutes; 0 disables (Daytona's meaning). */
  autoStopInterval: number;
  /** Minutes; 0 means the maximum (Daytona's meaning). */
  autoArchiveInterval: number;
  /** Minutes after stopping; -1 disables, 0 deletes as soon as it stops. */
  autoDeleteInterval: number;
  createdAt: Date;
  updatedAt: Date;
  lastActivityAt: Date;
  stoppedAt: Date | undefined;
  container: Docker.Container;
  sessions: Map<string, Session>;
}

export interface SnapshotRecord {
  id: string;
  name: string;
  imageName: string;
  state: 'active' | 'snapshotting' | 'error' | 'removing';
  sourceSandboxId: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** Snapshots the emulator made (docker commit): deleting one removes its image. */
  owned: boolean;
}

/** The sandbox as `GET /sandbox/{id}` answers it (the fields the SDK reads). */
export function sandboxDto(record: SandboxRecord, toolboxProxyUrl: string): Record<string, unknown> {
  return {
    id: record.id,
    organizationId: 'emulator',
    name: record.name,
    snapshot: record.snapshot,
    user: record.user,
    env: record.env,
    labels: record.labels,
    public: false,
    networkBlockAll: record.networkBlockAll,
    target: 'local',
    cpu: record.cpu,
    gpu: 0,
    memory: record.memory,
    disk: record.disk,
    state: record.state,
    desiredState:
      record.state === 'destroyed' ? 'destroyed' : record.state === 'stopped' ? 'stopped' : 'started',
    errorReason: record.errorReason,
    autoStopInterval: record.autoStopInterval,
    autoPauseInterval: 0,
    autoArchiveInterval: record.autoArchiveInterval,
    autoDeleteInterval: record.autoDeleteInterval,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
    lastActivityAt: record.lastActivityAt.toISOString(),
    toolboxProxyUrl,
    volumes: [],
  };
}

export function snapshotDto(record: SnapshotRecord): Record<string, unknown> {
  return {
    id: record.id,
    organizationId: 'emulator',
    general: false,
    name: record.name,
    imageName: record.imageName,
    state: record.state,
    size: null,
    entrypoint: null,
    cpu: 1,
    gpu: 0,
    mem: 1,
    disk: 3,
    errorReason: null,
    createdAt: record.createdAt.toISOString(),
    updatedAt: record.updatedAt.toISOString(),
    lastUsedAt: null,
    sourceSandboxId: record.sourceSandboxId,
  };
}
