/** The checkpoint engine both stores share: manifest schemas, sealing, the capture diff, the restore plan, shell text. */
export * from './diff.js';
export * from './manifest.js';
export * from './plan.js';
export * from './rollback-record.js';
export * from './script.js';
export * from './seal.js';
export * from './verify-report.js';
