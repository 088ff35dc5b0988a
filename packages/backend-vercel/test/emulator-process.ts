/**
 * The Vercel emulator in a process of its own (as a user would run it), so that the memory the
 * suite measures is the client's alone. Prints one JSON line {url, token, teamId, projectId}; stops on SIGTERM.
 */
import { startVercelEmulator } from '@agentbox/emulators';
import { recordEmulatorInstance } from '../../../scripts/leak-check.ts';

const emulator = await startVercelEmulator({ log: () => {} });
recordEmulatorInstance(emulator.instance);
const { url, token, teamId, projectId } = emulator;
process.stdout.write(`${JSON.stringify({ url, token, teamId, projectId })}\n`);
const stop = () => {
  void emulator.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent going away (a crashed test run) stops it too.
process.stdin.on('end', stop);
process.stdin.resume();
