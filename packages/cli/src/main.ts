/** `agentbox COMMAND ...`: dispatch, help, and the mapping from failures to exit statuses. */
import { parseArgs } from 'node:util';
import { UsageError, wantsHelp } from './args.js';
import { agentCommand } from './commands/agent.js';
import { checkpointCommand, checkpointsCommand, rollbackCommand } from './commands/checkpoints.js';
import { closeCommand } from './commands/close.js';
import type { Command } from './commands/context.js';
import { doctorCommand } from './commands/doctor.js';
import { emulateCommand } from './commands/emulate.js';
import { execCommand } from './commands/exec.js';
import { logCommand } from './commands/log.js';
import { mcpCommand } from './commands/mcp.js';
import { openCommand } from './commands/open.js';
import { shellCommand } from './commands/shell.js';
import { sweepCommand } from './commands/sweep.js';
import { catchInterrupts } from './interrupt.js';
import { printLine } from './output.js';
import { debugRequested, EXIT_USAGE, exitCodeFor, reportError } from './report.js';
import { type CommandName, commandUsage, isCommandName, MAIN_USAGE } from './usage.js';

const COMMANDS: Record<CommandName, Command> = {
  open: openCommand,
  exec: execCommand,
  shell: shellCommand,
  checkpoint: checkpointCommand,
  rollback: rollbackCommand,
  checkpoints: checkpointsCommand,
  close: closeCommand,
  sweep: sweepCommand,
  doctor: doctorCommand,
  agent: agentCommand,
  emulate: emulateCommand,
  log: logCommand,
  mcp: mcpCommand,
};

export interface MainOptions {
  /** The environment (model API keys); default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** Run the CLI with `argv` (without node and the script) and resolve with the exit status. Never throws. */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined) {
    reportError(new UsageError('no command given'), false);
    return EXIT_USAGE;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = args[0];
    printLine(topic !== undefined && isCommandName(topic) ? commandUsage(topic) : MAIN_USAGE);
    return 0;
  }
  if (!isCommandName(command)) {
    reportError(new UsageError(`unknown command "${command}"`), false);
    return EXIT_USAGE;
  }
  if (wantsHelp(args)) {
    printLine(commandUsage(command));
    return 0;
  }

  const json = jsonRequested(args);
  const interrupts = catchInterrupts();
  // A closed stdout (`agentbox exec ... | head`) stops the command as SIGPIPE would (exit 141).
  const onStdoutError = (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') interrupts.stop(141, 'stdout closed');
  };
  process.stdout.on('error', onStdoutError);
  try {
    return await COMMANDS[command](args, { interrupts, env: options.env ?? process.env });
  } catch (error) {
    const code = exitCodeFor(error, interrupts);
    // An interrupted command says nothing more: the user pressed Ctrl-C (or closed the pipe).
    if (!(interrupts.exitCode !== undefined && code === interrupts.exitCode))
      reportError(error, json, debugRequested(options.env ?? process.env));
    return code;
  } finally {
    interrupts.dispose();
    process.stdout.off('error', onStdoutError);
  }
}

/** Whether `--json` is among the flags (errors raised before or during flag parsing are formatted by it). */
function jsonRequested(args: string[]): boolean {
  try {
    const { tokens } = parseArgs({ args, strict: false, allowPositionals: true, tokens: true });
    return tokens.some((t) => t.kind === 'option' && t.name === 'json');
  } catch {
    return false;
  }
}
