/** The agentbox CLI as a library: run it in-process, or sweep a local backend root. */
export { BACKEND_KINDS } from './backends.js';
export { type MainOptions, main } from './main.js';
export { EXIT_FAILURE, EXIT_TIMEOUT, EXIT_USAGE } from './report.js';
export { type LocalSweepOptions, type SweptLocalSandbox, sweepLocal } from './sweep-local.js';
