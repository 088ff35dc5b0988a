/**
 * The packed-consumer project's program (copied into a fresh npm project by
 * packed-consumer.test.ts): what a new user writes, in the Node 20 style (try/finally, no
 * `await using`). `node dist/main.js <backend> [image]` opens a sandbox, runs a command, writes,
 * checkpoints and rolls back, and prints one JSON line of what it saw. On docker the image is
 * pulled at open (`pull: 'always'`), as a user's first open pulls it.
 */
import { isAgentboxError, openSandbox } from '@agentbox/core';
import '@agentbox/backend-local';
import '@agentbox/backend-docker';

async function run(backend: string, image: string | undefined) {
  const sandbox =
    backend === 'docker'
      ? await openSandbox({ backend: 'docker', config: { image, helperImage: image, pull: 'always' } })
      : await openSandbox({ backend: 'local' });
  try {
    const hello = await sandbox.exec(['echo', 'hello from the sandbox']);
    await sandbox.writeFile('notes/plan.md', '# plan\n');
    const before = await sandbox.checkpoint({ label: 'before' });
    await sandbox.exec('rm -rf notes');
    await sandbox.rollback(before);
    return {
      kind: sandbox.kind,
      exitCode: hello.exitCode,
      stdout: hello.stdout,
      restored: await sandbox.readTextFile('notes/plan.md'),
    };
  } finally {
    await sandbox.close();
  }
}

/** A misspelt key is refused at run time too (for JavaScript callers): INVALID_ARGUMENT, naming it. */
async function misspeltKey(): Promise<string> {
  try {
    // @ts-expect-error `rooot` is not a local config key (the typed config catches it at compile time).
    const sandbox = await openSandbox({ backend: 'local', config: { rooot: '/tmp' } });
    await sandbox.close();
    return 'opened';
  } catch (error) {
    return isAgentboxError(error) ? error.code : String(error);
  }
}

const [backend = 'local', image] = process.argv.slice(2);
const result = { ...(await run(backend, image)), misspeltKey: await misspeltKey() };
console.log(JSON.stringify(result));
