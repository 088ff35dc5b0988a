/**
 * The MCP server over one sandbox, with the SDK's low-level `Server`: the tool list and each call
 * are handled here so that arguments are checked by agentbox's own schemas, and every failure —
 * bad arguments, an unknown tool, a typed sandbox error, anything thrown — becomes a tool error
 * result carrying the agentbox error code, never a crash of the server.
 */
import type { ApprovalHook } from '@agentbox/agent';
import { type AgentboxError, PermissionDeniedError, type SandboxBackend } from '@agentbox/core';
import { didYouMean, invalidArgument, parseArgument, toAgentboxError } from '@agentbox/core/backend';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool as ToolDefinition,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { errorJson } from '../report.js';
import type { CutText } from './cut.js';
import { TOOLS, type Tool, type ToolSettings } from './tools.js';

export const SERVER_NAME = 'agentbox';
export const SERVER_VERSION = '0.1.0';
/** Where a failed call's result carries the agentbox error as JSON. */
export const ERROR_META_KEY = 'agentbox/error';

export interface McpServerOptions {
  sandbox: SandboxBackend;
  settings: ToolSettings;
  /** Aborted when the server shuts down: running commands are killed. */
  signal: AbortSignal;
  /** Where a line about each failed call goes (stderr: stdout is the protocol). */
  log: (line: string) => void;
  /**
   * Dangerous commands (the agent's approvals classifier): `ask` asks the client's user through
   * MCP elicitation when the client supports it and denies otherwise; `deny` always denies.
   */
  approvals?: 'ask' | 'deny';
  /** Hard limits over the whole session: tool calls, and wall-clock time from the start. */
  limits?: { maxCalls?: number; maxSeconds?: number };
}

/** Why a call was refused by a session limit: a typed denial naming the flag that sets it. */
function limitReached(message: string, operation: string): PermissionDeniedError {
  return new PermissionDeniedError(message, { operation });
}

export function createMcpServer(options: McpServerOptions): Server {
  // The low-level Server (not McpServer): McpServer checks arguments itself and its errors carry no agentbox code.
  const server = new Server(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: { tools: {} },
      instructions:
        `Tools over one ${options.sandbox.kind} sandbox (${options.sandbox.id}), working directory ` +
        `${options.sandbox.workdir}. Relative paths resolve against it. Failed calls return the agentbox ` +
        'error code (NOT_FOUND, INVALID_ARGUMENT, TIMEOUT, ...) first in their text, and as JSON in _meta["agentbox/error"]. ' +
        'Dangerous commands need approval (PERMISSION_DENIED otherwise); skills and memory files are scanned ' +
        'by the Skills Guard and quarantined when dangerous.',
    },
  );
  const definitions = toolDefinitions();
  const { maxCalls, maxSeconds } = options.limits ?? {};
  let calls = 0;
  // The session's time: running commands are stopped when it is up, later calls refused.
  const session = new AbortController();
  const deadline = maxSeconds === undefined ? undefined : Date.now() + maxSeconds * 1000;
  const timer =
    maxSeconds === undefined
      ? undefined
      : setTimeout(
          () =>
            session.abort(
              limitReached(
                `this server's time limit of ${maxSeconds} s is up (agentbox mcp --max-seconds)`,
                'mcp',
              ),
            ),
          maxSeconds * 1000,
        );
  timer?.unref();
  options.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  const ask: ApprovalHook = async ({ command, findings }) => {
    const why = findings.map((f) => `- ${f.severity} ${f.category}: ${f.reason}`).join('\n');
    const answer = await server.elicitInput({
      message: `The agent wants to run a command that needs approval:\n${command}\n${why}`,
      requestedSchema: {
        type: 'object',
        properties: { approve: { type: 'boolean', title: 'Run this command' } },
        required: ['approve'],
      },
    });
    return answer.action === 'accept' && answer.content?.approve === true;
  };
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: definitions }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: rawArgs } = request.params;
    try {
      calls++;
      if (maxCalls !== undefined && calls > maxCalls)
        throw limitReached(
          `this server's limit of ${maxCalls} tool calls is used up (agentbox mcp --max-calls)`,
          name,
        );
      if (deadline !== undefined && Date.now() >= deadline)
        throw limitReached(
          `this server's time limit of ${maxSeconds} s is up (agentbox mcp --max-seconds)`,
          name,
        );
      const tool = (TOOLS as Record<string, Tool>)[name];
      if (!tool) {
        const names = Object.keys(TOOLS);
        throw invalidArgument(
          'name',
          `"${name}" is no tool here${didYouMean(name, names)}; tools: ${names.join(', ')}`,
        );
      }
      const args = parseArgument(tool.args, rawArgs ?? {}, {
        what: 'arguments',
        context: { operation: name },
      });
      const canAsk =
        options.approvals !== 'deny' && server.getClientCapabilities()?.elicitation !== undefined;
      const signal = AbortSignal.any([extra.signal, options.signal, session.signal]);
      let output: Awaited<ReturnType<Tool['run']>>;
      try {
        output = await tool.run({
          sandbox: options.sandbox,
          args,
          settings: { ...options.settings, approvals: canAsk ? { approve: ask } : {} },
          signal,
        });
      } catch (error) {
        // Cut off by the session's time: say so, not just "aborted".
        if (session.signal.aborted) throw session.signal.reason;
        throw error;
      }
      return {
        content: [{ type: 'text', text: output.text }],
        structuredContent: output.structured,
      } satisfies CallToolResult;
    } catch (error) {
      const typed = toAgentboxError(error, {
        backend: options.sandbox.kind,
        operation: name,
        sandboxId: options.sandbox.id,
      });
      options.log(`${name} failed: ${typed.code}: ${typed.message}`);
      return errorResult(typed);
    }
  });
  return server;
}

/** Each tool as `tools/list` shows it: JSON Schemas (draft 7, which the SDK's client validates with) of its arguments and result. */
function toolDefinitions(): ToolDefinition[] {
  return Object.entries(TOOLS as Record<string, Tool>).map(([name, tool]) => ({
    name,
    description: tool.description,
    inputSchema: jsonSchema(tool.args, 'input') as ToolDefinition['inputSchema'],
    outputSchema: jsonSchema(tool.result, 'output') as ToolDefinition['outputSchema'],
    annotations: tool.annotations,
  }));
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { target: 'draft-7', io });
  return rest;
}

/**
 * A failed call: `CODE: message` as text, and the error as JSON in `_meta["agentbox/error"]`
 * (not in structuredContent, which clients check against the tool's result schema even for errors).
 */
export function errorResult(error: AgentboxError): CallToolResult {
  const json = errorJson(error);
  let text = `${error.code}: ${error.message}`;
  const output = (error as AgentboxError & { output?: { stdout: CutText; stderr: CutText } }).output;
  if (output) {
    // A timeout: what the command wrote before it was killed, cut as a result's output is.
    delete json.partial;
    json.output = { stdout: output.stdout.text, stderr: output.stderr.text };
    if (output.stdout.totalBytes > 0) text += `\n--- stdout before the timeout ---\n${output.stdout.text}`;
    if (output.stderr.totalBytes > 0) text += `\n--- stderr before the timeout ---\n${output.stderr.text}`;
  }
  return { isError: true, content: [{ type: 'text', text }], _meta: { [ERROR_META_KEY]: json } };
}
