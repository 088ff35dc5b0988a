/**
 * What the Vercel Sandbox emulator remembers: sandboxes (named, with tags and settings), their
 * sessions (each a running Docker container, or a stopped one's record), the commands of a
 * session, and snapshots (committed images). The DTOs are the JSON shapes the SDK's zod
 * validators accept (`@vercel/sandbox` 3.5, dist/api-client/validators.js).
 */
import type Docker from 'dockerode';

export type SessionStatus = 'pending' | 'running' | 'stopping' | 'stopped' | 'failed' | 'snapshotting';

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  data: string;
}

/** Someone following a command's output (a logs request, or a `wait: true` run). */
export interface LogFollower {
  /** False: the follower is behind; the command's output is paused until `drained`. */
  write(entry: LogEntry): boolean;
  drained(): Promise<void>;
  end(): void;
}

export interface CommandRecord {
  id: string;
  name: string;
  args: string[];
  cwd: string;
  sessionId: string;
  startedAt: number;
  exitCode: number | null;
  durationMs: number | undefined;
  /** Output not yet seen by a follower, bounded; `trimmed` once some was dropped. */
  backlog: LogEntry[];
  backlogChars: number;
  trimmed: boolean;
  followers: Set<LogFollower>;
  done: Promise<void>;
  /** The process id inside the container, for the kill endpoint (read when first asked). */
  pid: () => Promise<number | undefined>;
}

export interface SessionRecord {
  id: string;
  sandboxName: string;
  status: SessionStatus;
  container: Docker.Container | undefined;
  cwd: string;
  timeoutMs: number;
  requestedAt: number;
  startedAt: number | undefined;
  stoppedAt: number | undefined;
  snapshottedAt: number | undefined;
  sourceSnapshotId: string | undefined;
  timer: NodeJS.Timeout | undefined;
  commands: Map<string, CommandRecord>;
}

export interface SandboxRecord {
  name: string;
  projectId: string;
  persistent: boolean;
  vcpus: number;
  memoryMiB: number;
  timeoutMs: number;
  networkPolicy: 'allow-all' | 'deny-all';
  env: Record<string, string>;
  tags: Record<string, string>;
  /** The image its first session started from. */
  baseImage: string;
  currentSnapshotId: string | undefined;
  createdAt: number;
  updatedAt: number;
  session: SessionRecord;
}

export interface SnapshotRecord {
  id: string;
  sandboxName: string;
  sourceSessionId: string;
  imageName: string;
  status: 'created' | 'deleted' | 'failed';
  sizeBytes: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number | undefined;
}

export const REGION = 'emu1';

export function sessionDto(s: SessionRecord, sandbox: SandboxRecord): Record<string, unknown> {
  return {
    id: s.id,
    memory: sandbox.memoryMiB,
    vcpus: sandbox.vcpus,
    region: REGION,
    timeout: s.timeoutMs,
    status: s.status,
    requestedAt: s.requestedAt,
    ...(s.startedAt !== undefined ? { startedAt: s.startedAt } : {}),
    ...(s.stoppedAt !== undefined ? { stoppedAt: s.stoppedAt, duration: s.stoppedAt - s.requestedAt } : {}),
    ...(s.snapshottedAt !== undefined ? { snapshottedAt: s.snapshottedAt } : {}),
    ...(s.sourceSnapshotId !== undefined ? { sourceSnapshotId: s.sourceSnapshotId } : {}),
    createdAt: s.requestedAt,
    updatedAt: Date.now(),
    cwd: s.cwd,
    networkPolicy: { mode: sandbox.networkPolicy },
  };
}

export function sandboxDto(s: SandboxRecord): Record<string, unknown> {
  return {
    name: s.name,
    persistent: s.persistent,
    region: REGION,
    vcpus: s.vcpus,
    memory: s.memoryMiB,
    timeout: s.timeoutMs,
    networkPolicy: { mode: s.networkPolicy },
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    currentSessionId: s.session.id,
    ...(s.currentSnapshotId !== undefined ? { currentSnapshotId: s.currentSnapshotId } : {}),
    status: s.session.status,
    cwd: s.session.cwd,
    tags: s.tags,
  };
}

export function snapshotDto(s: SnapshotRecord): Record<string, unknown> {
  return {
    id: s.id,
    sourceSessionId: s.sourceSessionId,
    region: REGION,
    status: s.status,
    sizeBytes: s.sizeBytes,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    ...(s.expiresAt !== undefined ? { expiresAt: s.expiresAt } : {}),
  };
}

export function commandDto(c: CommandRecord): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    args: c.args,
    cwd: c.cwd,
    sessionId: c.sessionId,
    exitCode: c.exitCode,
    startedAt: c.startedAt,
    ...(c.durationMs !== undefined ? { durationMs: c.durationMs } : {}),
  };
}
