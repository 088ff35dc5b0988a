/**
 * @agentbox/conformance: the suite every agentbox backend passes. A backend's test file calls
 * `runConformance({ name, open })` once; every case has a stable id to skip it by, with a reason.
 */
export type { CaseContext, CaseGroup, ConformanceCase } from './case.js';
export type { ConformanceOpenOptions, ConformanceOptions } from './options.js';
export { caseIds, runConformance, validateOptions } from './runner.js';
