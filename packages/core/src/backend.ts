/**
 * @agentbox/core/backend: the kit for writing a backend. Subclass BaseSandbox and supply the
 * transport (start a RawProcess, read and write files) and a CheckpointStore; put a SessionPool
 * in front of the plain exec path; register the definition. The user-facing types and errors
 * come from `@agentbox/core`.
 */
export { ExecCheckpointStore, type StoreExec } from './checkpoint/exec-store.js';
export { frozenCheckpointStore } from './checkpoint/frozen-store.js';
export { type ShellPipes, ShellStoreExec, STORE_SHELL } from './checkpoint/shell-exec.js';
export { TreeCheckpointStore } from './checkpoint/tree-store.js';
export {
  EGRESS_RESOLV_CONF,
  EGRESS_TRUST_DIR,
  type EgressDenial,
  EgressDenialLog,
  type EgressDenialLogOptions,
  type EgressEntry,
  EgressRelay,
  type EgressRelayOptions,
  egressHostsFile,
  FORWARDER_SCRIPT,
  forwarderConfig,
  loadSecrets,
  loadTlsTermination,
  newPlaceholder,
  parseEgressAllowlist,
  redactSecrets,
  SandboxCa,
  type SecretBinding,
  SecretFilter,
  SYSTEM_CA_BUNDLE,
  secretEnv,
  secretsStatus,
  type TlsTermination,
  tlsTrustEnv,
  tlsTrustFiles,
} from './egress/index.js';
export { type ErrorContext, fromErrno, toAgentboxError } from './errors.js';
export {
  checkFileScript,
  FILE_SCRIPT_ERRNO,
  type FileScriptRun,
  READ_FILE_SCRIPT,
  readScriptResult,
  WRITE_FILE_SCRIPT,
} from './file-scripts.js';
export {
  continueProcesses,
  isStopped,
  namespaceMembers,
  pidNamespaceOf,
  processStat,
  stopProcesses,
} from './freeze.js';
export { HOLDER_KILL_SCRIPT, holderPipeSet, OUTPUT_DIR_KILL_SCRIPT } from './holder-kill.js';
export { type HostProcess, startHostProcess } from './host-process.js';
export { cgroupOomKills, memoryCgroupOf, OOM_KILLS_SCRIPT, OomKillCounter, parseOomKills } from './oom.js';
export { assertEnforced, enforcementReport } from './policy.js';
export {
  API_CWD_FAILED_STATUS,
  apiCommand,
  apiCommandFailure,
  type CollectedProcess,
  collectProcess,
  type RawProcess,
  type StartRequest,
} from './process.js';
export { defineBackend, type OpenContext, registerBackend } from './registry.js';
export {
  BaseSandbox,
  type BaseSandboxInit,
  type CheckpointCreateOptions,
  type CheckpointStore,
  type InstanceSwap,
  type InterruptedRollback,
  withRequestTimeout,
} from './sandbox.js';
export { type RunnerPrograms, SessionPool } from './session/index.js';
export { shellQuote, shellQuoteAll } from './shell-quote.js';
export { signalName, signalNumber } from './signals.js';
export { type WatchedSource, watchSource } from './source.js';
export { StreamQueue } from './stream-queue.js';
export { closestName, didYouMean } from './suggest.js';
export { type ArgumentCheck, formatZodIssues, invalidArgument, parseArgument } from './validate.js';
export { type DrainingStream, untilDrained } from './writable.js';
