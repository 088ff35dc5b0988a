/**
 * The README's TypeScript style: `await using` closes the sandbox when the block ends. tsc
 * (target ES2022) rewrites it, so the compiled file runs on Node 20 as well.
 * `node dist/disposable.js` prints one JSON line: what ran inside, and what a call after the block got.
 */
import { isAgentboxError, openSandbox, type SandboxBackend } from '@agentbox/core';
import '@agentbox/backend-local';

let escaped: SandboxBackend | undefined;
let inside = '';
{
  await using sandbox = await openSandbox({ backend: 'local' });
  inside = (await sandbox.exec('echo inside the block')).stdout;
  escaped = sandbox;
}
const after = await escaped.exec('true').then(
  () => 'still open',
  (error: unknown) => (isAgentboxError(error) ? error.code : String(error)),
);
console.log(JSON.stringify({ inside, after }));
