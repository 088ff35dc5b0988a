/** The agentbox CLI as a library: run it in-process. */
export { type MainOptions, main } from './main.js';
export { EXIT_FAILURE, EXIT_TIMEOUT, EXIT_USAGE } from './report.js';
