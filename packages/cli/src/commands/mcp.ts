/**
 * `agentbox mcp`: one sandbox served as Model Context Protocol tools over stdio. stdout carries
 * the protocol only; every log line goes to stderr. The sandbox is removed when the client goes
 * away (stdin reaches its end) or on SIGINT/SIGTERM, unless it is kept (`--keep`, or `--id`).
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { intFlag, noPositionals, parseCommand, SANDBOX_OPTIONS, UsageError } from '../args.js';
import { createMcpServer } from '../mcp/server.js';
import type { ToolSettings } from '../mcp/tools.js';
import { openFromFlags, rememberSandbox } from '../open.js';
import { printError } from '../output.js';
import type { Command } from './context.js';

export const MCP_DEFAULTS: ToolSettings = {
  timeoutMs: 120_000,
  maxOutputBytes: 64 * 1024,
  maxFileBytes: 1024 * 1024,
  maxDirEntries: 1_000,
};

const log = (line: string) => printError(`agentbox mcp: ${line}`);

export const mcpCommand: Command = async (args, ctx) => {
  const { json: _json, ...sandboxOptions } = SANDBOX_OPTIONS;
  const { values, positionals } = parseCommand('mcp', args, {
    ...sandboxOptions,
    keep: { type: 'boolean', default: false },
    'timeout-ms': { type: 'string' },
    'max-output-bytes': { type: 'string' },
    'max-file-bytes': { type: 'string' },
    'max-calls': { type: 'string' },
    'max-seconds': { type: 'string' },
    approvals: { type: 'string', default: 'ask' },
  });
  noPositionals('mcp', positionals);
  const settings: ToolSettings = {
    ...MCP_DEFAULTS,
    timeoutMs: intFlag('mcp', 'timeout-ms', values['timeout-ms'], 1) ?? MCP_DEFAULTS.timeoutMs,
    maxOutputBytes:
      intFlag('mcp', 'max-output-bytes', values['max-output-bytes'], 2) ?? MCP_DEFAULTS.maxOutputBytes,
    maxFileBytes: intFlag('mcp', 'max-file-bytes', values['max-file-bytes'], 1) ?? MCP_DEFAULTS.maxFileBytes,
  };
  if (values.approvals !== 'ask' && values.approvals !== 'deny')
    throw new UsageError(`--approvals must be ask or deny, not "${values.approvals}"`, 'mcp');
  const maxCalls = intFlag('mcp', 'max-calls', values['max-calls'], 1);
  const maxSeconds = intFlag('mcp', 'max-seconds', values['max-seconds'], 1);
  // --id names a sandbox made earlier (agentbox open), which outlives this server like --keep's.
  const attached = values.id !== undefined;
  const keep = attached || values.keep;
  const sandbox = await openFromFlags(values, {
    keep,
    mustExist: attached,
    signal: ctx.interrupts.signal,
    env: ctx.env,
  });
  const shutdown = new AbortController();
  try {
    // Later commands (agentbox exec --id ...) find a kept sandbox by its id alone.
    if (keep && !attached) await rememberSandbox(values, sandbox, ctx.env);
    const server = createMcpServer({
      sandbox,
      settings,
      signal: AbortSignal.any([shutdown.signal, ctx.interrupts.signal]),
      log,
      approvals: values.approvals,
      limits: {
        ...(maxCalls === undefined ? {} : { maxCalls }),
        ...(maxSeconds === undefined ? {} : { maxSeconds }),
      },
    });
    server.onerror = (error) => log(`protocol error: ${error.message}`);
    const ended = new Promise<string>((resolve) => {
      process.stdin.once('end', () => resolve('the client closed stdin'));
      server.onclose = () => resolve('the connection closed');
      const { signal } = ctx.interrupts;
      if (signal.aborted) resolve('interrupted');
      else signal.addEventListener('abort', () => resolve(String(signal.reason?.message ?? 'interrupted')));
    });
    await server.connect(new StdioServerTransport());
    log(
      `serving ${sandbox.kind} sandbox ${sandbox.id} (workdir ${sandbox.workdir}) on stdio; ` +
        (keep ? 'it is kept when the client goes' : 'it is removed when the client goes'),
    );
    const why = await ended;
    // Commands still running are killed before the sandbox goes.
    shutdown.abort();
    await server.close();
    log(`${why}: closing`);
  } finally {
    shutdown.abort();
    await sandbox.close();
  }
  log(keep ? `sandbox ${sandbox.id} kept` : `sandbox ${sandbox.id} removed`);
  return ctx.interrupts.exitCode ?? 0;
};
