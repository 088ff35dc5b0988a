/**
 * Modal backend against the Modal emulator (@agentbox/emulators: Modal's gRPC protocol, sandboxes
 * as local Docker containers), beside the bare `modal` SDK against the same emulator in the same
 * run: exec `true` (the plain path, and with sessions), open to first exec, and 100 MB up and down.
 */
import '@agentbox/backend-modal';
import { randomBytes } from 'node:crypto';
import { openSandbox } from '@agentbox/core';
import { startModalEmulator } from '@agentbox/emulators';
import { ModalClient, type Sandbox } from 'modal';
import { medianMs, report, skip, timeMs } from './harness.js';

const IMAGE = 'agentbox/busybox:test';
const SIZE = 100 * 1024 * 1024;

export async function run(): Promise<void> {
  let emulator: Awaited<ReturnType<typeof startModalEmulator>>;
  try {
    emulator = await startModalEmulator({ log: () => {} });
  } catch (error) {
    skip('modal', `the emulator could not start: ${(error as Error).message}`);
    return;
  }
  // modal 0.11 reads its endpoint from MODAL_SERVER_URL only, in the constructor.
  process.env.MODAL_SERVER_URL = emulator.url;
  const sdk = new ModalClient({
    tokenId: emulator.tokenId,
    tokenSecret: emulator.tokenSecret,
    logLevel: 'error',
  });
  delete process.env.MODAL_SERVER_URL;
  const config = {
    serverUrl: emulator.url,
    tokenId: emulator.tokenId,
    tokenSecret: emulator.tokenSecret,
    image: IMAGE,
    workdir: '/tmp',
  };
  const bareRun = async (sb: Sandbox, argv: string[]) => {
    const p = await sb.exec(argv, { mode: 'binary' });
    await Promise.all([p.wait(), p.stdout.readBytes(), p.stderr.readBytes()]);
  };
  try {
    const app = await sdk.apps.fromName('agentbox', { createIfMissing: true });
    const image = sdk.images.fromRegistry(IMAGE);
    const bare = await sdk.sandboxes.create(app, image);
    const plain = await openSandbox({ backend: 'modal', config });
    const pooled = await openSandbox({ backend: 'modal', config: { ...config, sessions: true } });
    try {
      const bareExec = await medianMs(() => bareRun(bare, ['true']), { runs: 15 });
      for (const [sandbox, path] of [
        [plain, 'plain path'],
        [pooled, 'sessions'],
      ] as const)
        report({
          bench: `exec true (${path})`,
          backend: 'modal (emulator)',
          value: await medianMs(() => sandbox.exec('true'), { runs: 15 }),
          unit: 'ms',
          baseline: 'bare SDK exec',
          baselineValue: bareExec,
        });

      const data = randomBytes(SIZE);
      const up = await timeMs(() => plain.writeFile('/tmp/big.bin', data));
      const bareUp = await timeMs(() => bare.filesystem.writeBytes(data, '/tmp/big.bin'));
      report({
        bench: 'upload 100 MB',
        backend: 'modal (emulator)',
        value: up,
        unit: 'ms',
        baseline: 'bare SDK filesystem.writeBytes',
        baselineValue: bareUp,
      });
      let read: Uint8Array | undefined;
      const down = await timeMs(async () => {
        read = await plain.readFile('/tmp/big.bin');
      });
      const bareDown = await timeMs(() => bare.filesystem.readBytes('/tmp/big.bin'));
      if (!read || Buffer.compare(Buffer.from(read), data) !== 0)
        throw new Error('modal bench: the download differs');
      report({
        bench: 'download 100 MB',
        backend: 'modal (emulator)',
        value: down,
        unit: 'ms',
        baseline: 'bare SDK filesystem.readBytes',
        baselineValue: bareDown,
      });
    } finally {
      await plain.close();
      await pooled.close();
      await bare.terminate();
    }

    const opens: number[] = [];
    const bareOpens: number[] = [];
    const removals: Promise<unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      opens.push(
        await timeMs(async () => {
          const sb = await openSandbox({ backend: 'modal', config });
          await sb.exec('true');
          removals.push(sb.close().catch(() => {}));
        }),
      );
      bareOpens.push(
        await timeMs(async () => {
          const sb = await sdk.sandboxes.create(app, sdk.images.fromRegistry(IMAGE));
          await bareRun(sb, ['true']);
          removals.push(sb.terminate().catch(() => {}));
        }),
      );
    }
    await Promise.all(removals);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    report({
      bench: 'open to first exec',
      backend: 'modal (emulator)',
      value: median(opens),
      unit: 'ms',
      baseline: 'bare SDK create + exec',
      baselineValue: median(bareOpens),
    });
  } finally {
    sdk.close();
    await emulator.close();
  }
}
