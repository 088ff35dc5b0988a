/**
 * The Modal emulator in a process of its own (as a user would run it), so that the memory the
 * suite measures is the client's alone. Prints one JSON line {url, tokenId, tokenSecret}; stops on SIGTERM.
 */
import { startModalEmulator } from '@agentbox/emulators';
import { recordEmulatorInstance } from '../../../scripts/leak-check.ts';

const emulator = await startModalEmulator({ log: () => {} });
recordEmulatorInstance(emulator.instance);
process.stdout.write(
  `${JSON.stringify({ url: emulator.url, tokenId: emulator.tokenId, tokenSecret: emulator.tokenSecret })}\n`,
);
const stop = () => {
  void emulator.close().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent going away (a crashed test run) stops it too.
process.stdin.on('end', stop);
process.stdin.resume();
