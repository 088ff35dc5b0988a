/**
 * @agentbox/core: what a user of agentbox calls. Open a sandbox from a spec, the contract it
 * keeps, the typed errors, the policy and the report of what is enforced, and the discovery of
 * backends by kind. What a backend author needs (BaseSandbox, the exec engine, sessions,
 * checkpoint stores) is `@agentbox/core/backend`.
 */
export { type DiscoveryOptions, listBackends, loadBackend } from './discovery.js';
export {
  AbortedError,
  AgentboxError,
  AuthenticationError,
  CheckpointCorruptError,
  CheckpointNotFoundError,
  type ErrorCode,
  InvalidArgumentError,
  IsADirectoryError,
  isAgentboxError,
  ModelUnavailableError,
  NoSpaceError,
  NotFoundError,
  OutputLimitError,
  type PartialOutput,
  PermissionDeniedError,
  PolicyNotEnforceableError,
  RollbackIncompleteError,
  SandboxClosedError,
  SandboxUnavailableError,
  TimeoutError,
  UnsupportedError,
} from './errors.js';
export { DEFAULT_MAX_OUTPUT_BYTES } from './output.js';
export {
  type ControlStatus,
  type EnforcementReport,
  type NetworkPolicy,
  type ParsedPolicy,
  POLICY_CONTROLS,
  type Policy,
  type PolicyControl,
  PolicySchema,
  type SecretPolicy,
} from './policy.js';
export { createPool, POOL_LABEL, type PoolOpenOptions, type PoolOptions, type SandboxPool } from './pool.js';
export {
  type BackendConfigFor,
  type BackendConfigs,
  type BackendDefinition,
  type DoctorCheck,
  type DoctorReport,
  type KnownBackendKind,
  type OpenOptions,
  type OpenProgress,
  openSandbox,
  parseBackendConfig,
  SandboxIdSchema,
  type SandboxSpec,
  SandboxSpecSchema,
  type SweepOptions,
  type SweepReport,
  type SweptSandbox,
} from './registry.js';
export {
  LINUX_SIGNALS,
  parseSignal,
  type SignalInput,
  type SignalName,
  signalName,
  signalNumber,
} from './signals.js';
export type {
  Capabilities,
  CapabilityName,
  CheckpointInfo,
  CheckpointOptions,
  CheckpointVerifyReport,
  Command,
  DamagedManifest,
  DamagedObject,
  ExecHandle,
  ExecOptions,
  ExecResult,
  ReadFileOptions,
  SandboxBackend,
  SpawnOptions,
  StdinSource,
  TransportOptions,
  WriteFileOptions,
} from './types.js';
