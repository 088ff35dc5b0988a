/**
 * The tools `agentbox mcp` serves: each has a zod schema for its arguments (checked here, so a
 * bad argument is a typed INVALID_ARGUMENT), a schema of its structured result, and a run
 * function that returns the structured result and a text rendering of it.
 */
import {
  type ApprovalSettings,
  decideCommand,
  folderChangeMessage,
  type GuardSettings,
  guardedWrite,
  isGuardedPath,
  type KeepOutcome,
  outcomeMessage,
  watchCommand,
} from '@agentbox/agent';
import {
  type CheckpointInfo,
  InvalidArgumentError,
  PermissionDeniedError,
  type SandboxBackend,
  TimeoutError,
} from '@agentbox/core';
import { invalidArgument } from '@agentbox/core/backend';
import { z } from 'zod';
import { type CutText, cutText } from './cut.js';
import { listDir } from './list-dir.js';

export interface ToolSettings {
  /** Longest a command may run, and the default when a call gives no timeoutMs. */
  timeoutMs: number;
  /** Output kept per stream of a command (head and tail). */
  maxOutputBytes: number;
  /** Largest file read_file returns. */
  maxFileBytes: number;
  /** Entries list_dir returns at most. */
  maxDirEntries: number;
  /** The Skills Guard over skills and memory folders (write_file into them, and what exec writes there). */
  guard?: GuardSettings;
  /** Who approves a dangerous command; without a hook every one is denied. */
  approvals?: ApprovalSettings;
}

/** What a tool hands back: the structured result and its text for a reader. */
export interface ToolOutput {
  structured: Record<string, unknown>;
  text: string;
}

export interface ToolCall<Args> {
  sandbox: SandboxBackend;
  args: Args;
  settings: ToolSettings;
  signal: AbortSignal;
}

export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface Tool<Args extends z.ZodType = z.ZodType> {
  description: string;
  args: Args;
  result: z.ZodType;
  annotations: ToolAnnotations;
  run(call: ToolCall<z.output<Args>>): Promise<ToolOutput>;
}

function tool<Args extends z.ZodType>(t: Tool<Args>): Tool<Args> {
  return t;
}

const encoding = z
  .enum(['utf8', 'base64'])
  .optional()
  .describe('utf8 (default) for text; base64 for any bytes');

const checkpointResult = z.object({
  id: z.string(),
  label: z.string().nullable(),
  createdAt: z.string(),
  entries: z.number(),
  bytesStored: z.number(),
});

const streamCounts = z.object({ stdout: z.number(), stderr: z.number() });

/** Skills and memory files the Skills Guard moved to quarantine, each with its verdict. */
const quarantinedSchema = z.array(
  z.object({ target: z.string(), kind: z.enum(['skill', 'memory']), verdict: z.string(), path: z.string() }),
);

function quarantinedJson(outcomes: readonly KeepOutcome[]) {
  return outcomes
    .filter((o) => !o.kept)
    .map((o) => ({ target: o.report.target, kind: o.report.kind, verdict: o.report.verdict, path: o.path }));
}

export const TOOLS = {
  exec: tool({
    description:
      'Run a command in the sandbox. A string runs with sh -c; an array runs as argv with no shell. ' +
      'stdout and stderr come back separately with the exit code (127: program not found; 128+n: ' +
      'killed by signal n). Each stream is cut to its head and tail when long, with a note saying so. ' +
      'stdin is closed unless given.',
    args: z.strictObject({
      command: z
        .union([z.string().min(1), z.array(z.string()).min(1)], {
          error: 'must be a non-empty string (run with sh -c) or a non-empty array of strings (argv)',
        })
        .describe('sh -c STRING, or argv [program, ...args]'),
      cwd: z.string().min(1).optional().describe('working directory, relative to the sandbox workdir'),
      env: z.record(z.string(), z.string()).optional().describe('extra environment variables'),
      timeoutMs: z
        .number()
        .int()
        .positive()
        .optional()
        .describe("kill the command's process tree after this long"),
      stdin: z.string().optional().describe('text given to the command on stdin (closed when absent)'),
    }),
    result: z.object({
      exitCode: z.number(),
      signal: z.string().nullable(),
      stdout: z.string(),
      stderr: z.string(),
      truncated: z.object({ stdout: z.boolean(), stderr: z.boolean() }),
      totalBytes: streamCounts,
      durationMs: z.number(),
      quarantined: quarantinedSchema.optional(),
    }),
    annotations: { destructiveHint: true, openWorldHint: true },
    async run({ sandbox, args, settings, signal }) {
      if (args.timeoutMs !== undefined && args.timeoutMs > settings.timeoutMs)
        throw invalidArgument(
          'timeoutMs',
          `${args.timeoutMs} is over this server's limit of ${settings.timeoutMs} ms (agentbox mcp --timeout-ms)`,
        );
      const decision = await decideCommand(args.command, settings.approvals, args.cwd);
      if (!decision.allowed)
        throw new PermissionDeniedError(decision.message!, {
          operation: 'exec',
          subject: typeof args.command === 'string' ? args.command : args.command.join(' '),
        });
      // A command can write skills and memory too (so can what an earlier one left running): what
      // changed there is scanned, before and after it.
      const watch = await watchCommand(sandbox, settings.guard, signal);
      const reviewAfter = () => watch.review();
      const cap = settings.maxOutputBytes;
      // Counted here too: a timeout's partial output says how much was written, not whether it was cut.
      const written = { stdout: 0, stderr: 0 };
      try {
        const r = await sandbox.exec(args.command, {
          cwd: args.cwd,
          env: args.env,
          stdin: args.stdin,
          timeoutMs: args.timeoutMs ?? settings.timeoutMs,
          maxOutputBytes: cap,
          signal,
          onStdout: (chunk) => {
            written.stdout += chunk.length;
          },
          onStderr: (chunk) => {
            written.stderr += chunk.length;
          },
        });
        const { between, during } = await reviewAfter();
        const guarded = [...between, ...during];
        const guardText = [
          ...(between.length > 0
            ? [folderChangeMessage(between, 'a process an earlier command left running')]
            : []),
          ...(during.length > 0 ? [folderChangeMessage(during)] : []),
        ].join('\n');
        const stdout = cutText(r.stdoutBytes, r.totalBytes.stdout, cap, r.truncated.stdout);
        const stderr = cutText(r.stderrBytes, r.totalBytes.stderr, cap, r.truncated.stderr);
        const status = `exit code ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}`;
        const quarantined = quarantinedJson(guarded);
        const text = renderStreams(status, stdout, stderr);
        return {
          structured: {
            exitCode: r.exitCode,
            signal: r.signal,
            stdout: stdout.text,
            stderr: stderr.text,
            truncated: r.truncated,
            totalBytes: r.totalBytes,
            durationMs: r.durationMs,
            ...(quarantined.length > 0 ? { quarantined } : {}),
          },
          text: guarded.length > 0 ? `${text}\n--- Skills Guard ---\n${guardText}` : text,
        };
      } catch (error) {
        // A command cut short may have written a skill before it ended: it is scanned all the same.
        if (!signal.aborted) await reviewAfter().catch(() => undefined);
        if (error instanceof TimeoutError) throw timeoutWithOutput(error, written, cap);
        throw error;
      }
    },
  }),

  read_file: tool({
    description:
      'Read a file from the sandbox. encoding utf8 (default) refuses bytes that are not UTF-8 text; ' +
      'base64 returns any file exactly. Files over the server limit are refused with OUTPUT_LIMIT ' +
      '(read a part with exec: head -c, tail -c, sed -n).',
    args: z.strictObject({
      path: z.string().min(1).describe('relative to the sandbox workdir, or absolute'),
      encoding,
    }),
    result: z.object({
      path: z.string(),
      encoding: z.enum(['utf8', 'base64']),
      content: z.string(),
      sizeBytes: z.number(),
    }),
    annotations: { readOnlyHint: true },
    async run({ sandbox, args, settings, signal }) {
      const bytes = await sandbox.readFile(args.path, { maxBytes: settings.maxFileBytes, signal });
      const as = args.encoding ?? 'utf8';
      const content = as === 'base64' ? Buffer.from(bytes).toString('base64') : strictUtf8(bytes, args.path);
      return {
        structured: { path: args.path, encoding: as, content, sizeBytes: bytes.length },
        text: as === 'base64' ? `${args.path} (${bytes.length} bytes, base64):\n${content}` : content,
      };
    },
  }),

  write_file: tool({
    description:
      'Write a file in the sandbox, creating missing parent directories and replacing an existing ' +
      'file. content is UTF-8 text, or base64 with encoding base64.',
    args: z.strictObject({
      path: z.string().min(1).describe('relative to the sandbox workdir, or absolute'),
      content: z.string(),
      encoding,
      mode: z
        .string()
        .regex(/^0?[0-7]{3}$/, 'must be an octal file mode such as "644" or "0755"')
        .optional()
        .describe('octal mode of a new file, e.g. "755" (default 644)'),
    }),
    result: z.object({
      path: z.string(),
      bytesWritten: z.number(),
      quarantined: quarantinedSchema.optional(),
    }),
    annotations: { destructiveHint: true },
    async run({ sandbox, args, settings, signal }) {
      // A write into the skills or memory folder passes the Skills Guard, which keeps it or quarantines it.
      if (args.encoding !== 'base64') {
        const guarded = await guardedWrite(sandbox, args.path, args.content, settings.guard, signal);
        if (guarded)
          return {
            structured: {
              path: guarded.path,
              bytesWritten: guarded.kept ? Buffer.byteLength(args.content) : 0,
              ...(guarded.kept ? {} : { quarantined: quarantinedJson([guarded]) }),
            },
            text: outcomeMessage(guarded),
          };
      } else if (isGuardedPath(sandbox, args.path, settings.guard)) {
        throw invalidArgument('encoding', 'skills and memory files are text: write them with encoding utf8', {
          operation: 'write_file',
        });
      }
      const data =
        args.encoding === 'base64' ? strictBase64(args.content) : Buffer.from(args.content, 'utf8');
      await sandbox.writeFile(args.path, data, {
        signal,
        ...(args.mode ? { mode: Number.parseInt(args.mode, 8) } : {}),
      });
      return {
        structured: { path: args.path, bytesWritten: data.length },
        text: `wrote ${data.length} bytes to ${args.path}`,
      };
    },
  }),

  list_dir: tool({
    description:
      'List a directory in the sandbox: each entry with its type (file, directory, symlink, other) ' +
      'and the size of regular files. Sorted by name; hidden entries included.',
    args: z.strictObject({
      path: z.string().min(1).optional().describe('default: the sandbox workdir'),
    }),
    result: z.object({
      path: z.string(),
      entries: z.array(
        z.object({
          name: z.string(),
          type: z.enum(['file', 'directory', 'symlink', 'other']),
          sizeBytes: z.number().nullable(),
        }),
      ),
      truncated: z.boolean(),
    }),
    annotations: { readOnlyHint: true },
    async run({ sandbox, args, settings, signal }) {
      const listing = await listDir(sandbox, args.path ?? '.', settings.maxDirEntries, signal);
      const lines = listing.entries.map((e) =>
        e.type === 'file'
          ? `${e.name}  (${e.sizeBytes ?? '?'} bytes)`
          : `${e.name}${e.type === 'directory' ? '/' : `  (${e.type})`}`,
      );
      if (listing.entries.length === 0) lines.push('(empty)');
      if (listing.truncated)
        lines.push(
          `[… only the first ${settings.maxDirEntries} entries are listed; the directory holds more]`,
        );
      return { structured: { ...listing }, text: lines.join('\n') };
    },
  }),

  checkpoint: tool({
    description: "Save the sandbox's filesystem state; rollback with the returned id restores it.",
    args: z.strictObject({ label: z.string().optional().describe('a note to find it by') }),
    result: checkpointResult,
    annotations: { destructiveHint: false },
    async run({ sandbox, args, signal }) {
      const info = await sandbox.checkpoint({ label: args.label, signal });
      return {
        structured: checkpointJson(info),
        text: `checkpoint ${info.id}${info.label ? ` "${info.label}"` : ''}: ${info.entries} entries, ${info.bytesStored} bytes stored`,
      };
    },
  }),

  rollback: tool({
    description:
      "Restore the sandbox's filesystem to a checkpoint: files created after it are removed, " +
      'changed and deleted ones come back.',
    args: z.strictObject({ id: z.string().min(1).describe('a checkpoint id (list_checkpoints)') }),
    result: z.object({ rolledBackTo: z.string() }),
    annotations: { destructiveHint: true, idempotentHint: true },
    async run({ sandbox, args, signal }) {
      await sandbox.rollback(args.id, { signal });
      return { structured: { rolledBackTo: args.id }, text: `rolled back to ${args.id}` };
    },
  }),

  list_checkpoints: tool({
    description: "The sandbox's checkpoints, oldest first.",
    args: z.strictObject({}),
    result: z.object({ checkpoints: z.array(checkpointResult) }),
    annotations: { readOnlyHint: true },
    async run({ sandbox }) {
      const list = await sandbox.listCheckpoints();
      const text =
        list.length === 0
          ? 'no checkpoints'
          : list
              .map((c) => `${c.id}  ${c.createdAt}  ${c.entries} entries${c.label ? `  ${c.label}` : ''}`)
              .join('\n');
      return { structured: { checkpoints: list.map(checkpointJson) }, text };
    },
  }),

  info: tool({
    description:
      'What this sandbox is: backend, id, working directory, capabilities, and the enforcement ' +
      'report (each policy control: enforced, not supported, or not requested).',
    args: z.strictObject({}),
    result: z.object({
      id: z.string(),
      backend: z.string(),
      workdir: z.string(),
      capabilities: z.record(z.string(), z.unknown()),
      enforcement: z.record(z.string(), z.object({ status: z.string(), detail: z.string() })),
    }),
    annotations: { readOnlyHint: true },
    async run({ sandbox }) {
      const lines = [
        `${sandbox.kind} sandbox ${sandbox.id}`,
        `workdir    ${sandbox.workdir}`,
        `isolation  ${sandbox.capabilities.isolation}`,
        'enforcement:',
        ...Object.entries(sandbox.enforcement).map(
          ([control, e]) => `  ${control}: ${e.status} (${e.detail})`,
        ),
      ];
      return {
        structured: {
          id: sandbox.id,
          backend: sandbox.kind,
          workdir: sandbox.workdir,
          capabilities: { ...sandbox.capabilities },
          enforcement: { ...sandbox.enforcement },
        },
        text: lines.join('\n'),
      };
    },
  }),
} as const satisfies Record<string, Tool>;

export type ToolName = keyof typeof TOOLS;

function checkpointJson(info: CheckpointInfo) {
  return { ...info, label: info.label ?? null };
}

function renderStreams(status: string, stdout: CutText, stderr: CutText): string {
  const parts = [status];
  if (stdout.totalBytes > 0) parts.push(`--- stdout ---\n${stdout.text}`);
  if (stderr.totalBytes > 0) parts.push(`--- stderr ---\n${stderr.text}`);
  return parts.join('\n');
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

function strictUtf8(bytes: Uint8Array, path: string): string {
  try {
    return fatalUtf8.decode(bytes);
  } catch {
    throw new InvalidArgumentError(`${path} is not UTF-8 text: read it with encoding "base64"`, {
      operation: 'read_file',
      subject: path,
      issues: ['encoding: the file is not UTF-8 text; use "base64"'],
    });
  }
}

function strictBase64(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1)
    throw invalidArgument('content', 'is not base64 (encoding "base64" was given)', {
      operation: 'write_file',
    });
  return Buffer.from(compact, 'base64');
}

/** The timeout error, its partial output cut and marked as a result's would be (for the error's text). */
function timeoutWithOutput(
  error: TimeoutError,
  written: { stdout: number; stderr: number },
  cap: number,
): TimeoutError & { output: { stdout: CutText; stderr: CutText } } {
  const { partial } = error;
  const output = {
    stdout: cutText(partial.stdoutBytes, written.stdout, cap, written.stdout > partial.stdoutBytes.length),
    stderr: cutText(partial.stderrBytes, written.stderr, cap, written.stderr > partial.stderrBytes.length),
  };
  return Object.assign(error, { output });
}
