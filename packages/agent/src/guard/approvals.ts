/**
 * Approvals for commands: a command the classifier finds dangerous runs only if the approval
 * hook says yes. Without a hook (an unattended run) the answer is no, and the model is told why.
 */
import { shellQuoteAll } from '@agentbox/core/backend';
import { classifyShell } from './command-rules.js';
import { type CommandFinding, type Severity, severityRank } from './findings.js';

export interface ApprovalRequest {
  /** The command as the model asked for it. */
  command: string;
  cwd?: string;
  /** What made it need approval (at or above the threshold). */
  findings: CommandFinding[];
}

/** Says yes or no to one dangerous command; an exception counts as no. */
export type ApprovalHook = (request: ApprovalRequest) => boolean | Promise<boolean>;

export interface ApprovalSettings {
  /** Undefined: unattended, every dangerous command is denied. */
  approve?: ApprovalHook;
  /** Lowest severity that needs approval (default `high`). */
  threshold?: Severity;
}

export interface CommandDecision {
  allowed: boolean;
  /** Findings at or above the threshold; empty when no approval was needed. */
  findings: CommandFinding[];
  /** For the model when the command was denied. */
  message?: string;
}

/** The classifier's findings for a shell string or an argv array (judged as the words they are). */
export function classifyCommand(command: string | readonly string[]): CommandFinding[] {
  return classifyShell(typeof command === 'string' ? command : shellQuoteAll(command));
}

/** Findings that need approval under the given threshold. */
export function dangerousFindings(
  command: string | readonly string[],
  threshold: Severity = 'high',
): CommandFinding[] {
  return classifyCommand(command).filter((f) => severityRank(f.severity) >= severityRank(threshold));
}

export async function decideCommand(
  command: string | readonly string[],
  settings: ApprovalSettings = {},
  cwd?: string,
): Promise<CommandDecision> {
  const text = typeof command === 'string' ? command : shellQuoteAll(command);
  const findings = dangerousFindings(command, settings.threshold);
  if (findings.length === 0) return { allowed: true, findings };
  const reasons = findings.map((f) => `${f.reason} [${f.category}]`).join('; ');
  if (!settings.approve) {
    return {
      allowed: false,
      findings,
      message:
        `denied: this command needs approval (${reasons}) and this run is unattended, so it was not run. ` +
        'Do the step in a narrower way (for example, name the exact files inside the workspace) or leave it to the operator.',
    };
  }
  let approved = false;
  let failure = '';
  try {
    approved =
      (await settings.approve({ command: text, ...(cwd === undefined ? {} : { cwd }), findings })) === true;
  } catch (error) {
    failure = ` (the approval hook failed: ${error instanceof Error ? error.message : String(error)})`;
  }
  if (approved) return { allowed: true, findings };
  return {
    allowed: false,
    findings,
    message: `denied: the operator did not approve this command${failure} (${reasons}). It was not run; find another way or ask the user.`,
  };
}
