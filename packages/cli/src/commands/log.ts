/** `agentbox log summarize FILE`: what an agent run did, read back from its session log. */
import { formatSessionSummary, readSessionLog, summarizeSessionLog } from '@agentbox/agent';
import { parseCommand, UsageError } from '../args.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

export const logCommand: Command = async (args) => {
  const [action, ...rest] = args;
  if (action !== 'summarize') throw new UsageError('name the action: summarize FILE', 'log');
  const { values, positionals } = parseCommand('log', rest, { json: { type: 'boolean', default: false } });
  if (positionals.length !== 1) throw new UsageError('give exactly one session log FILE', 'log');
  const summary = summarizeSessionLog(readSessionLog(positionals[0]!));
  if (values.json) printJson(summary);
  else printLine(formatSessionSummary(summary));
  // A run that did not finish (a limit, the kill switch, an error, or a log that stops short) is 1.
  return summary.stop?.reason === 'finished' ? 0 : 1;
};
