export * from './checkpoint/exec-store.js';
export * from './checkpoint/tree-store.js';
export * from './errors.js';
export * from './output.js';
export * from './policy.js';
export * from './process.js';
export * from './registry.js';
export * from './sandbox.js';
export type * from './types.js';
