/** Skills Guard and command approvals: what the agent keeps and what it runs pass through here. */
export {
  type ApprovalHook,
  type ApprovalRequest,
  type ApprovalSettings,
  type CommandDecision,
  classifyCommand,
  dangerousFindings,
  decideCommand,
} from './approvals.js';
export { destructiveCommand } from './destructive.js';
export {
  type CommandFinding,
  type GuardCategory,
  type GuardFinding,
  maxSeverity,
  type Severity,
  type Verdict,
  verdictOf,
} from './findings.js';
export { readSkillFolder } from './folder.js';
export {
  type GuardPolicy,
  isBlocked,
  type KeepOnHostOptions,
  type KeepOutcome,
  keepOnHost,
  type SaveInSandboxOptions,
  type SkillFileInput,
  saveMemoryInSandbox,
  saveSkillInSandbox,
} from './keep.js';
export { formatGuardReport } from './report.js';
export {
  DEFAULT_GUARD_LIMITS,
  type GuardLimits,
  type GuardReport,
  type SkillFile,
  scanMemoryText,
  scanSkillFiles,
} from './scanner.js';
export {
  type ParsedScript,
  type Pipeline,
  parseShell,
  type Redirect,
  type SimpleCommand,
} from './shell-parse.js';
export { type GuardSettings, guardedWrite, isGuardedPath, outcomeMessage } from './skill-tools.js';
export {
  type FolderFingerprints,
  fingerprintGuardedFolders,
  folderChangeMessage,
  reviewFolderChanges,
  type WatchedChanges,
  watchCommand,
} from './watch.js';
