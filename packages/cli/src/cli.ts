#!/usr/bin/env node
/** The `agentbox` executable. */
import { main } from './main.js';
import { flush } from './output.js';

// A reader that went away (`agentbox open | head -1`) must not crash us with an unhandled EPIPE:
// the operation's own status stands (a running exec is stopped with 141 by main).
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

main(process.argv.slice(2), { env: process.env })
  .then(async (code) => {
    // Let everything written reach the pipe before exiting (an open handle must not keep us alive).
    await Promise.all([flush(process.stdout), flush(process.stderr)]);
    process.exit(code);
  })
  .catch((error: unknown) => {
    process.stderr.write(`agentbox: INTERNAL: ${String(error)}\n`);
    process.exit(1);
  });
