/** What the Modal emulator remembers: apps, images, sandboxes (one container each) and their execs. */
import { EventEmitter } from 'node:events';
import type { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { EMULATOR_LABEL, INSTANCE_LABEL } from '../docker.js';

export interface ImageRecord {
  id: string;
  /** The local Docker image a sandbox from this image runs. */
  dockerImage: string;
  /** Made by a filesystem snapshot (a committed image this emulator owns). */
  snapshot: boolean;
}

export interface SandboxRecord {
  id: string;
  taskId: string;
  appId: string;
  imageId: string;
  /** Seconds since the epoch, strictly increasing across sandboxes (list pages by it). */
  createdAt: number;
  tags: Record<string, string>;
  timeoutSecs: number;
  idleTimeoutSecs: number | undefined;
  workdir: string | undefined;
  env: Record<string, string>;
  container: Docker.Container;
  /** The router JWT handed out for this sandbox. */
  routerJwt: string;
  /** Set once it ended: why (GenericResult status: 1 success, 3 terminated, 4 timeout). */
  finished: { status: number; exception: string } | undefined;
  execs: Map<string, ExecRecord>;
  lastActivity: number;
  timers: NodeJS.Timeout[];
  /** Emits `finished`. */
  events: EventEmitter;
}

/** One exec's output as it accumulates: every byte kept, so a reader can resume at any offset. */
export class OutputLog {
  readonly chunks: Buffer[] = [];
  length = 0;
  ended = false;
  /** A reader reached the end once the output had ended. */
  drained = false;
  readonly #changed = new EventEmitter();

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.#changed.emit('change');
  }

  end(): void {
    this.ended = true;
    this.#changed.emit('change');
  }

  /** The bytes from `offset` on (at most `max`), or wait for some; empty once ended. */
  async read(offset: number, max: number, signal: AbortSignal): Promise<Buffer | undefined> {
    while (offset >= this.length && !this.ended) {
      if (signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#changed.off('change', done);
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.#changed.on('change', done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
    if (offset >= this.length) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    let skip = offset;
    let size = 0;
    for (const chunk of this.chunks) {
      if (skip >= chunk.length) {
        skip -= chunk.length;
        continue;
      }
      const piece = chunk.subarray(skip, skip + (max - size));
      skip = 0;
      parts.push(piece);
      size += piece.length;
      if (size >= max) break;
    }
    return Buffer.concat(parts);
  }
}

export interface ExecRecord {
  id: string;
  stdout: OutputLog;
  stderr: OutputLog;
  /** Where stdin bytes go; undefined once closed. */
  stdin: Writable | undefined;
  stdinWritten: number;
  stdinClosed: boolean;
  exit: { code?: number; signal?: number } | undefined;
  exited: Promise<void>;
}

/** The labels every container of this emulator carries. */
export function modalLabels(instance: string, sandboxId: string): Record<string, string> {
  return { [EMULATOR_LABEL]: 'modal', [INSTANCE_LABEL]: instance, 'io.agentbox.emulator.sandbox': sandboxId };
}
