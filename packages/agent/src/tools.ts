/** The tools the agent offers a model, each a thin, validated call into the sandbox. */
import type { AgentboxError, InvalidArgumentError, SandboxBackend } from '@agentbox/core';
import { didYouMean, parseArgument, toAgentboxError } from '@agentbox/core/backend';
import { z } from 'zod';
import { cutMiddle, DEFAULT_MAX_RESULT_CHARS } from './cut.js';
import {
  type CommandDecision,
  decideCommand,
  destructiveCommand,
  folderChangeMessage,
  type GuardSettings,
  guardedWrite,
  type KeepOutcome,
  outcomeMessage,
  watchCommand,
} from './guard/index.js';

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface ToolSettings {
  /** Default per-command timeout (the model may ask for less, never more). */
  execTimeoutMs: number;
  /** Output a tool result may carry back to the model, per stream. */
  maxOutputBytes: number;
  /** Skills Guard and approvals; on by default (unattended: dangerous commands are denied). */
  guard?: GuardSettings;
  /**
   * Take a checkpoint before a destructive call (a command that deletes, moves or overwrites
   * files; a write over an existing file), so one rollback undoes it. The loop turns it on.
   */
  autoCheckpoint?: boolean;
  /** Characters of one tool result for the model; longer ones keep their head and tail (default 24 000). */
  maxResultChars?: number;
  /** Where save_skill writes, relative to the workspace (default `skills`). */
  skillsDir?: string;
  /** Where write_memory writes, relative to the workspace (default `memory`). */
  memoryDir?: string;
  /**
   * Asked before a skill or memory file is kept (the Skills Guard plugs in here). A refusal is
   * reported to the model with its reason and nothing is written.
   */
  reviewWrite?: (file: ReviewedWrite) => Promise<{ keep: true } | { keep: false; reason: string }>;
}

/** A checkpoint taken during a run; `auto` says why the loop took it before a destructive step. */
export interface TakenCheckpoint {
  id: string;
  label: string | undefined;
  auto?: string;
}

/** A skill or memory file about to be written, for {@link ToolSettings.reviewWrite}. */
export interface ReviewedWrite {
  kind: 'skill' | 'memory';
  /** Relative to the workspace. */
  path: string;
  content: string;
}

/** What a tool hands back: the text for the model and, for a command, how it exited. */
export interface ToolOutcome {
  output: string;
  exitCode?: number;
  /** Set when a command needed approval: the decision and what made it dangerous. */
  approval?: CommandDecision;
  /** A checkpoint the tool made (or took before a destructive step), for the log and the final report. */
  checkpoint?: TakenCheckpoint;
  /** Skills and memory files the call wrote that the Skills Guard quarantined (or, after a command, warned about). */
  guarded?: KeepOutcome[];
  /** The checkpoint a rollback restored. */
  rolledBackTo?: string;
  /** The tool ran but did not do what was asked (a listing that failed, a skill the review refused). */
  failed?: boolean;
}

interface Tool<Args extends z.ZodType> {
  spec: ToolSpec;
  args: Args;
  run(
    sandbox: SandboxBackend,
    args: z.output<Args>,
    settings: ToolSettings,
    signal?: AbortSignal,
  ): Promise<string | ToolOutcome>;
}

function tool<Args extends z.ZodType>(t: Tool<Args>): Tool<Args> {
  return t;
}

const execArgs = z.strictObject({
  command: z.string().min(1),
  cwd: z.string().optional(),
  timeoutMs: z.number().int().positive().optional(),
});
const pathArgs = z.strictObject({ path: z.string().min(1) });
const writeArgs = z.strictObject({ path: z.string().min(1), content: z.string() });
const checkpointArgs = z.strictObject({ label: z.string().optional() });
const rollbackArgs = z.strictObject({ id: z.string().min(1) });
const listArgs = z.strictObject({ path: z.string().min(1).default('.') });
const searchArgs = z.strictObject({
  pattern: z.string().min(1),
  path: z.string().min(1).default('.'),
  glob: z.string().min(1).optional(),
});
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const skillArgs = z.strictObject({
  name: z
    .string()
    .regex(NAME, 'must be 1-64 lower-case letters, digits, - or _, starting with a letter or digit'),
  content: z.string().min(1),
});
const memoryArgs = z.strictObject({
  content: z.string().min(1),
  file: z.string().regex(NAME, 'must be 1-64 lower-case letters, digits, - or _').default('notes'),
  mode: z.enum(['append', 'replace']).default('append'),
});

/** Runs argv (no shell) and shapes the result like the exec tool does. */
async function runArgv(
  sandbox: SandboxBackend,
  argv: readonly string[],
  settings: ToolSettings,
  signal: AbortSignal | undefined,
) {
  return await sandbox.exec(argv, {
    timeoutMs: settings.execTimeoutMs,
    maxOutputBytes: settings.maxOutputBytes,
    signal,
  });
}

/** Keeps a skill or memory file only if the review (the Skills Guard, when configured) lets it through. */
async function reviewedWrite(
  sandbox: SandboxBackend,
  file: ReviewedWrite,
  settings: ToolSettings,
  signal: AbortSignal | undefined,
): Promise<{ refused: string; guarded?: KeepOutcome } | undefined> {
  const verdict = settings.reviewWrite ? await settings.reviewWrite(file) : { keep: true as const };
  if (!verdict.keep) return { refused: verdict.reason };
  // Then the Skills Guard, which keeps the file or quarantines it with its report.
  const guard = { skillsDir: settings.skillsDir, memoryDir: settings.memoryDir, ...settings.guard };
  const guarded = await guardedWrite(sandbox, file.path, file.content, guard, signal);
  if (guarded) return guarded.kept ? undefined : { refused: outcomeMessage(guarded), guarded };
  await sandbox.writeFile(file.path, file.content, { signal });
  return undefined;
}

/** True when one of the paths (relative to cwd) exists in the sandbox. */
async function anyExists(
  sandbox: SandboxBackend,
  paths: readonly string[],
  cwd: string | undefined,
  settings: ToolSettings,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const script = 'for f; do [ -e "$f" ] && exit 0; done; exit 1';
  const r = await sandbox.exec(['sh', '-c', script, 'sh', ...paths], {
    cwd,
    timeoutMs: settings.execTimeoutMs,
    signal,
  });
  return r.exitCode === 0;
}

/** The checkpoint before a destructive step, when automatic checkpoints are on and the sandbox has them. */
async function checkpointBefore(
  sandbox: SandboxBackend,
  what: string,
  reason: string,
  settings: ToolSettings,
  signal: AbortSignal | undefined,
): Promise<TakenCheckpoint | undefined> {
  if (!settings.autoCheckpoint || !sandbox.capabilities.checkpoints) return undefined;
  const label = `before ${what.length > 60 ? `${what.slice(0, 60)}…` : what}`;
  const info = await sandbox.checkpoint({ label, signal });
  return { id: info.id, label, auto: reason };
}

/** The output, led by a note of the checkpoint taken before the step (so the model can undo it). */
function withCheckpoint(outcome: ToolOutcome, checkpoint: TakenCheckpoint | undefined): ToolOutcome {
  if (!checkpoint) return outcome;
  return {
    ...outcome,
    checkpoint,
    output: `[checkpoint ${checkpoint.id} was taken before this step (${checkpoint.auto}); rollback to it undoes the step]\n${outcome.output}`,
  };
}

export const TOOLS = {
  exec: tool({
    spec: {
      name: 'exec',
      description: 'Run a shell command (sh -c) in the sandbox. Returns the exit code, stdout and stderr.',
      parameters: {
        type: 'object',
        properties: {
          command: { type: 'string' },
          cwd: { type: 'string', description: 'relative to the workspace' },
          timeoutMs: { type: 'integer' },
        },
        required: ['command'],
        additionalProperties: false,
      },
    },
    args: execArgs,
    async run(sandbox, args, settings, signal) {
      const decision = await decideCommand(args.command, settings.guard?.approvals, args.cwd);
      if (!decision.allowed) return { output: decision.message!, approval: decision };
      const destructive = settings.autoCheckpoint ? destructiveCommand(args.command) : undefined;
      const destroys =
        destructive !== undefined &&
        (!destructive.overwrites ||
          (await anyExists(sandbox, destructive.overwrites, args.cwd, settings, signal)));
      const checkpoint = destroys
        ? await checkpointBefore(sandbox, args.command, destructive.reason, settings, signal)
        : undefined;
      // A command can write skills and memory too (so can what an earlier one left running): what
      // changed there is scanned, before and after it.
      const watch = await watchCommand(sandbox, settings.guard, signal);
      const reviewAfter = async () => {
        const { between, during } = await watch.review();
        return { all: [...between, ...during], between, during };
      };
      let r: Awaited<ReturnType<SandboxBackend['exec']>>;
      try {
        r = await sandbox.exec(args.command, {
          cwd: args.cwd,
          timeoutMs: Math.min(args.timeoutMs ?? settings.execTimeoutMs, settings.execTimeoutMs),
          maxOutputBytes: settings.maxOutputBytes,
          signal,
        });
      } catch (error) {
        // A command cut short may have written a skill before it ended.
        if (!signal?.aborted) await reviewAfter();
        throw error;
      }
      const reviewed = await reviewAfter();
      const guarded = reviewed.all;
      const parts = [`exit code: ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}`];
      if (r.stdout) parts.push(`stdout:\n${r.stdout}${cutNote(r.truncated.stdout, r.totalBytes.stdout)}`);
      if (r.stderr) parts.push(`stderr:\n${r.stderr}${cutNote(r.truncated.stderr, r.totalBytes.stderr)}`);
      if (reviewed.between.length > 0)
        parts.push(folderChangeMessage(reviewed.between, 'a process an earlier command left running'));
      if (reviewed.during.length > 0) parts.push(folderChangeMessage(reviewed.during));
      return withCheckpoint(
        {
          output: parts.join('\n'),
          exitCode: r.exitCode,
          ...(decision.findings.length > 0 ? { approval: decision } : {}),
          ...(guarded.length > 0 ? { guarded } : {}),
        },
        checkpoint,
      );
    },
  }),
  read_file: tool({
    spec: {
      name: 'read_file',
      description: 'Read a text file from the sandbox.',
      parameters: {
        type: 'object',
        properties: { path: { type: 'string' } },
        required: ['path'],
        additionalProperties: false,
      },
    },
    args: pathArgs,
    async run(sandbox, args, settings, signal) {
      return await sandbox.readTextFile(args.path, { maxBytes: settings.maxOutputBytes, signal });
    },
  }),
  write_file: tool({
    spec: {
      name: 'write_file',
      description: 'Write a text file in the sandbox (parents are created, an existing file is replaced).',
      parameters: {
        type: 'object',
        properties: { path: { type: 'string' }, content: { type: 'string' } },
        required: ['path', 'content'],
        additionalProperties: false,
      },
    },
    args: writeArgs,
    async run(sandbox, args, settings, signal) {
      const exists =
        settings.autoCheckpoint && (await anyExists(sandbox, [args.path], undefined, settings, signal));
      const checkpoint = exists
        ? await checkpointBefore(
            sandbox,
            `write_file ${args.path}`,
            `overwrites ${args.path}`,
            settings,
            signal,
          )
        : undefined;
      const guarded = await guardedWrite(sandbox, args.path, args.content, settings.guard, signal);
      if (guarded)
        return withCheckpoint(
          { output: outcomeMessage(guarded), ...(guarded.kept ? {} : { guarded: [guarded] }) },
          checkpoint,
        );
      await sandbox.writeFile(args.path, args.content, { signal });
      return withCheckpoint(
        { output: `wrote ${Buffer.byteLength(args.content)} bytes to ${args.path}` },
        checkpoint,
      );
    },
  }),
  checkpoint: tool({
    spec: {
      name: 'checkpoint',
      description: 'Save the state of the workspace so it can be restored with rollback.',
      parameters: {
        type: 'object',
        properties: { label: { type: 'string' } },
        additionalProperties: false,
      },
    },
    args: checkpointArgs,
    async run(sandbox, args, _settings, signal) {
      const info = await sandbox.checkpoint({ label: args.label, signal });
      return {
        output: `checkpoint ${info.id} (${info.entries} entries)`,
        checkpoint: { id: info.id, label: args.label },
      };
    },
  }),
  rollback: tool({
    spec: {
      name: 'rollback',
      description: 'Restore the workspace to a checkpoint, undoing every change made after it.',
      parameters: {
        type: 'object',
        properties: { id: { type: 'string' } },
        required: ['id'],
        additionalProperties: false,
      },
    },
    args: rollbackArgs,
    async run(sandbox, args, _settings, signal) {
      await sandbox.rollback(args.id, { signal });
      return { output: `rolled back to ${args.id}`, rolledBackTo: args.id };
    },
  }),
  list_dir: tool({
    spec: {
      name: 'list_dir',
      description: 'List a folder of the sandbox (names, sizes, modes), default the workspace.',
      parameters: {
        type: 'object',
        properties: { path: { type: 'string', description: 'relative to the workspace' } },
        additionalProperties: false,
      },
    },
    args: listArgs,
    async run(sandbox, args, settings, signal) {
      const r = await runArgv(sandbox, ['ls', '-lA', '--', args.path], settings, signal);
      if (r.exitCode !== 0)
        return { output: `error: cannot list ${args.path}: ${r.stderr.trim()}`, failed: true };
      return r.stdout || '(empty folder)';
    },
  }),
  search_files: tool({
    spec: {
      name: 'search_files',
      description:
        'Search file contents under a folder for a regular expression (grep -E); glob limits the file names, e.g. "*.ts".',
      parameters: {
        type: 'object',
        properties: {
          pattern: { type: 'string' },
          path: { type: 'string', description: 'relative to the workspace; default the workspace' },
          glob: { type: 'string' },
        },
        required: ['pattern'],
        additionalProperties: false,
      },
    },
    args: searchArgs,
    async run(sandbox, args, settings, signal) {
      // find + grep, both in busybox too: the same tool on every backend's image.
      // find has no `--`: a path that starts with "-" would be read as an expression (`-delete`).
      const root = args.path.startsWith('-') ? `./${args.path}` : args.path;
      const argv = ['find', root, '-type', 'f'];
      if (args.glob) argv.push('-name', args.glob);
      argv.push('-exec', 'grep', '-n', '-H', '-E', '-e', args.pattern, '--', '{}', '+');
      const r = await runArgv(sandbox, argv, settings, signal);
      if (r.stdout)
        return r.stdout + (r.truncated.stdout ? `\n[matches cut: ${r.totalBytes.stdout} bytes in all]` : '');
      if (r.exitCode <= 1 && !r.stderr.trim()) return 'no matches';
      return { output: `error: search failed (exit code ${r.exitCode}): ${r.stderr.trim()}`, failed: true };
    },
  }),
  save_skill: tool({
    spec: {
      name: 'save_skill',
      description:
        'Save a reusable skill as skills/NAME/SKILL.md (markdown: what it is for, then the steps). It is reviewed before it is kept.',
      parameters: {
        type: 'object',
        properties: { name: { type: 'string' }, content: { type: 'string' } },
        required: ['name', 'content'],
        additionalProperties: false,
      },
    },
    args: skillArgs,
    async run(sandbox, args, settings, signal) {
      const path = `${settings.skillsDir ?? 'skills'}/${args.name}/SKILL.md`;
      const refused = await reviewedWrite(
        sandbox,
        { kind: 'skill', path, content: args.content },
        settings,
        signal,
      );
      if (refused !== undefined)
        return {
          output: `error: skill "${args.name}" was not kept: ${refused.refused}`,
          failed: true,
          ...(refused.guarded ? { guarded: [refused.guarded] } : {}),
        };
      return `saved skill ${args.name} to ${path} (${Buffer.byteLength(args.content)} bytes)`;
    },
  }),
  write_memory: tool({
    spec: {
      name: 'write_memory',
      description:
        'Write a note to long-term memory (memory/FILE.md, default notes); mode append (default) or replace. It is reviewed before it is kept.',
      parameters: {
        type: 'object',
        properties: {
          content: { type: 'string' },
          file: { type: 'string' },
          mode: { type: 'string', enum: ['append', 'replace'] },
        },
        required: ['content'],
        additionalProperties: false,
      },
    },
    args: memoryArgs,
    async run(sandbox, args, settings, signal) {
      const path = `${settings.memoryDir ?? 'memory'}/${args.file}.md`;
      let content = args.content.endsWith('\n') ? args.content : `${args.content}\n`;
      if (args.mode === 'append') {
        const before = await sandbox.readTextFile(path, { signal }).catch((error: unknown) => {
          if ((error as { code?: string }).code === 'NOT_FOUND') return '';
          throw error;
        });
        content = before + content;
      }
      const refused = await reviewedWrite(sandbox, { kind: 'memory', path, content }, settings, signal);
      if (refused !== undefined)
        return {
          output: `error: memory ${path} was not changed: ${refused.refused}`,
          failed: true,
          ...(refused.guarded ? { guarded: [refused.guarded] } : {}),
        };
      return `${args.mode === 'append' ? 'appended to' : 'replaced'} ${path} (${Buffer.byteLength(content)} bytes now)`;
    },
  }),
} as const;

export type ToolName = keyof typeof TOOLS;

function cutNote(truncated: boolean, total: number): string {
  return truncated ? `\n[output cut: ${total} bytes in all; the head and the tail are shown]` : '';
}

/**
 * Run one tool call. Whatever goes wrong — unknown tool, bad arguments, a typed sandbox error —
 * becomes a result the model can read and react to; only an abort propagates.
 */
export async function runTool(
  sandbox: SandboxBackend,
  name: string,
  rawArgs: unknown,
  settings: ToolSettings,
  signal?: AbortSignal,
): Promise<{ ok: boolean } & ToolOutcome> {
  const t = (TOOLS as Record<string, Tool<z.ZodType>>)[name];
  const maxChars = settings.maxResultChars ?? DEFAULT_MAX_RESULT_CHARS;
  if (!t) {
    const tools = Object.keys(TOOLS);
    return {
      ok: false,
      output: `error: unknown tool "${name}"${didYouMean(name, tools)}; tools: ${tools.join(', ')}`,
    };
  }
  let args: unknown;
  try {
    args = parseArgument(t.args, rawArgs, { what: `arguments for ${name}` });
  } catch (error) {
    const issues = (error as InvalidArgumentError).issues;
    return { ok: false, output: `error: invalid arguments for ${name}: ${issues.join('; ')}` };
  }
  try {
    const outcome = await t.run(sandbox, args, settings, signal);
    const result = typeof outcome === 'string' ? { output: outcome } : outcome;
    const { failed, ...rest } = result;
    return { ...rest, ok: !failed, output: cutMiddle(result.output, maxChars) };
  } catch (error) {
    // Sandbox calls throw typed errors; anything else is wrapped so that none escapes untyped.
    const typed = toAgentboxError(error, { backend: sandbox.kind, operation: name, sandboxId: sandbox.id });
    if (signal?.aborted) throw typed;
    const partial = typed.code === 'TIMEOUT' ? partialOutput(typed) : '';
    return { ok: false, output: cutMiddle(`error ${typed.code}: ${typed.message}${partial}`, maxChars) };
  }
}

function partialOutput(error: AgentboxError): string {
  const partial = (error as AgentboxError & { partial?: { stdout: string; stderr: string } }).partial;
  if (!partial) return '';
  return `\noutput before the timeout:\n${partial.stdout}${partial.stderr ? `\nstderr:\n${partial.stderr}` : ''}`;
}
