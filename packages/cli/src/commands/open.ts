/** `agentbox open`: create (or re-attach to) a sandbox that outlives the command, and remember it. */
import { noPositionals, parseCommand, SANDBOX_OPTIONS } from '../args.js';
import { rememberSandbox, useSandbox } from '../open.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

export const openCommand: Command = async (args, ctx) => {
  const { values, positionals } = parseCommand('open', args, SANDBOX_OPTIONS);
  noPositionals('open', positionals);
  return useSandbox(
    values,
    { keep: true, mustExist: false, signal: ctx.interrupts.signal, env: ctx.env },
    async (sandbox) => {
      // Later commands find its backend and config by --id alone.
      await rememberSandbox(values, sandbox, ctx.env);
      if (values.json) {
        printJson({
          id: sandbox.id,
          backend: sandbox.kind,
          workdir: sandbox.workdir,
          capabilities: sandbox.capabilities,
          enforcement: sandbox.enforcement,
        });
        return 0;
      }
      printLine(`${sandbox.kind} sandbox ${sandbox.id}`);
      printLine(`  workdir    ${sandbox.workdir}`);
      printLine(`  isolation  ${sandbox.capabilities.isolation}`);
      printLine('  enforcement:');
      const width = Math.max(...Object.keys(sandbox.enforcement).map((c) => c.length));
      for (const [control, { status, detail }] of Object.entries(sandbox.enforcement))
        printLine(`    ${control.padEnd(width)}  ${status.padEnd(13)}  ${detail}`);
      return 0;
    },
  );
};
