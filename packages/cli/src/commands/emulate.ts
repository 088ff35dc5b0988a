/** `agentbox emulate daytona|vercel|modal|kubernetes`: serve a local stand-in for a provider's API until interrupted. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noPositionals, parseCommand, UsageError } from '../args.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

const PROVIDERS = ['daytona', 'vercel', 'modal', 'kubernetes'] as const;

export const emulateCommand: Command = async (args, ctx) => {
  const [provider, ...rest] = args;
  if (provider === undefined || !(PROVIDERS as readonly string[]).includes(provider))
    throw new UsageError(`name the provider to emulate: ${PROVIDERS.join(', ')}`, 'emulate');
  const { values, positionals } = parseCommand('emulate', rest, {
    port: { type: 'string' },
    host: { type: 'string' },
    'api-key': { type: 'string' },
    'minute-ms': { type: 'string' },
    json: { type: 'boolean' },
  });
  noPositionals('emulate', positionals);
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new UsageError('--port must be a port number', 'emulate');
  const minuteMs = values['minute-ms'] === undefined ? undefined : Number(values['minute-ms']);
  if (minuteMs !== undefined && !(Number.isFinite(minuteMs) && minuteMs > 0))
    throw new UsageError('--minute-ms must be a positive number', 'emulate');
  // Loaded here only: no other command needs the emulators (or dockerode).
  const { startDaytonaEmulator, startKubernetesEmulator, startModalEmulator, startVercelEmulator } =
    await import('@agentbox/emulators');
  if (provider === 'kubernetes') {
    if (minuteMs !== undefined) throw new UsageError('--minute-ms is for the daytona emulator', 'emulate');
    const kube = await startKubernetesEmulator({
      port,
      ...(values.host ? { host: values.host } : {}),
      ...(values['api-key'] ? { token: values['api-key'] } : {}),
    });
    // The kubeconfig as a file (mode 0600: it holds the token), removed when the stand-in stops.
    const dir = await mkdtemp(join(tmpdir(), 'agentbox-kube-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, kube.kubeconfig, { mode: 0o600 });
    if (values.json) printJson({ provider, url: kube.url, token: kube.token, kubeconfig });
    else {
      printLine(`kubernetes API server stand-in on ${kube.url} (each pod Docker containers)`);
      printLine(`  export KUBECONFIG=${kubeconfig}`);
      printLine('Ctrl-C stops it and removes every pod it made.');
    }
    await interrupted(ctx.interrupts.signal);
    await kube.close();
    await rm(dir, { recursive: true, force: true });
    return ctx.interrupts.exitCode ?? 0;
  }
  if (provider === 'modal') {
    if (minuteMs !== undefined) throw new UsageError('--minute-ms is for the daytona emulator', 'emulate');
    if (values.host) throw new UsageError('the modal emulator listens on 127.0.0.1 only', 'emulate');
    const modal = await startModalEmulator({
      port,
      ...(values['api-key'] ? { tokenSecret: values['api-key'] } : {}),
    });
    const { url, tokenId, tokenSecret } = modal;
    if (values.json) printJson({ provider, url, tokenId, tokenSecret });
    else {
      printLine(`modal emulator on ${url} (gRPC, plaintext; images are local Docker images, never pulled)`);
      printLine(`  export MODAL_SERVER_URL=${url}`);
      printLine(`  export MODAL_TOKEN_ID=${tokenId}`);
      printLine(`  export MODAL_TOKEN_SECRET=${tokenSecret}`);
      printLine('Ctrl-C stops it and removes every sandbox and snapshot image it made.');
    }
    await interrupted(ctx.interrupts.signal);
    await modal.close();
    return ctx.interrupts.exitCode ?? 0;
  }
  if (provider === 'vercel') {
    if (minuteMs !== undefined) throw new UsageError('--minute-ms is for the daytona emulator', 'emulate');
    const vercel = await startVercelEmulator({
      port,
      ...(values.host ? { host: values.host } : {}),
      ...(values['api-key'] ? { token: values['api-key'] } : {}),
    });
    const { url, token, teamId, projectId } = vercel;
    if (values.json) printJson({ provider, url, token, teamId, projectId });
    else {
      printLine(`vercel emulator on ${url} (it stands for https://vercel.com/api)`);
      printLine(`  backend config: ${JSON.stringify({ apiUrl: url, token, teamId, projectId })}`);
      printLine(
        '  the bare SDK: pass token, teamId, projectId and a fetch that rewrites https://vercel.com/api to the URL',
      );
      printLine('Ctrl-C stops it and removes every sandbox and snapshot it made.');
    }
    await interrupted(ctx.interrupts.signal);
    await vercel.close();
    return ctx.interrupts.exitCode ?? 0;
  }
  const emulator = await startDaytonaEmulator({
    port,
    ...(values.host ? { host: values.host } : {}),
    ...(values['api-key'] ? { apiKey: values['api-key'] } : {}),
    ...(minuteMs !== undefined ? { minuteMs } : {}),
  });
  if (values.json) printJson({ provider, url: emulator.url, apiKey: emulator.apiKey });
  else {
    printLine(`daytona emulator on ${emulator.url} (polling mode: the SDK's event socket is not served)`);
    printLine(`  export DAYTONA_API_URL=${emulator.url}`);
    printLine(`  export DAYTONA_API_KEY=${emulator.apiKey}`);
    printLine('  export DAYTONA_USE_DEPRECATED_POLLING=true');
    printLine('Ctrl-C stops it and removes every sandbox and snapshot it made.');
  }
  await interrupted(ctx.interrupts.signal);
  await emulator.close();
  return ctx.interrupts.exitCode ?? 0;
};

function interrupted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
