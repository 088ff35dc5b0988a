/** The egress allowlist for jails with only loopback (local bubblewrap, ssh): see each file. */
export {
  EGRESS_RESOLV_CONF,
  type EgressEntry,
  egressHostsFile,
  forwarderConfig,
  parseEgressAllowlist,
} from './allowlist.js';
export { type EgressDenial, EgressDenialLog, type EgressDenialLogOptions } from './denial-log.js';
export { FORWARDER_SCRIPT } from './forwarder-script.js';
export { EgressRelay, type EgressRelayOptions } from './relay.js';
export { SecretFilter, type SecretRefusal } from './secret-filter.js';
export {
  EGRESS_TRUST_DIR,
  loadSecrets,
  loadTlsTermination,
  newPlaceholder,
  redactSecrets,
  type SecretBinding,
  SYSTEM_CA_BUNDLE,
  secretEnv,
  secretsStatus,
  type TlsTermination,
  tlsTrustEnv,
  tlsTrustFiles,
} from './secrets.js';
export { type IssuedCertificate, SandboxCa } from './x509.js';
