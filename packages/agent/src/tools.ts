/** The tools the agent offers a model, each a thin, validated call into the sandbox. */
import type { AgentboxError, InvalidArgumentError, SandboxBackend } from '@agentbox/core';
import { didYouMean, parseArgument, toAgentboxError } from '@agentbox/core/backend';
import { z } from 'zod';
import {
  type CommandDecision,
  decideCommand,
  type GuardSettings,
  guardedWrite,
  outcomeMessage,
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
}

/** What a tool hands back: the text for the model and, for a command, how it exited. */
export interface ToolOutcome {
  output: string;
  exitCode?: number;
  /** Set when a command needed approval: the decision and what made it dangerous. */
  approval?: CommandDecision;
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
      const r = await sandbox.exec(args.command, {
        cwd: args.cwd,
        timeoutMs: Math.min(args.timeoutMs ?? settings.execTimeoutMs, settings.execTimeoutMs),
        maxOutputBytes: settings.maxOutputBytes,
        signal,
      });
      const parts = [`exit code: ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}`];
      if (r.stdout) parts.push(`stdout:\n${r.stdout}${cutNote(r.truncated.stdout, r.totalBytes.stdout)}`);
      if (r.stderr) parts.push(`stderr:\n${r.stderr}${cutNote(r.truncated.stderr, r.totalBytes.stderr)}`);
      return {
        output: parts.join('\n'),
        exitCode: r.exitCode,
        ...(decision.findings.length > 0 ? { approval: decision } : {}),
      };
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
      const guarded = await guardedWrite(sandbox, args.path, args.content, settings.guard, signal);
      if (guarded) return outcomeMessage(guarded);
      await sandbox.writeFile(args.path, args.content, { signal });
      return `wrote ${Buffer.byteLength(args.content)} bytes to ${args.path}`;
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
      return `checkpoint ${info.id} (${info.entries} entries)`;
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
      return `rolled back to ${args.id}`;
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
    return { ok: true, ...(typeof outcome === 'string' ? { output: outcome } : outcome) };
  } catch (error) {
    // Sandbox calls throw typed errors; anything else is wrapped so that none escapes untyped.
    const typed = toAgentboxError(error, { backend: sandbox.kind, operation: name, sandboxId: sandbox.id });
    if (signal?.aborted) throw typed;
    const partial = typed.code === 'TIMEOUT' ? partialOutput(typed) : '';
    return { ok: false, output: `error ${typed.code}: ${typed.message}${partial}` };
  }
}

function partialOutput(error: AgentboxError): string {
  const partial = (error as AgentboxError & { partial?: { stdout: string; stderr: string } }).partial;
  if (!partial) return '';
  return `\noutput before the timeout:\n${partial.stdout}${partial.stderr ? `\nstderr:\n${partial.stderr}` : ''}`;
}
