/** `agentbox emulate daytona`: serve a local stand-in for a provider's API until interrupted. */
import { noPositionals, parseCommand, UsageError } from '../args.js';
import { printJson, printLine } from '../output.js';
import type { Command } from './context.js';

const PROVIDERS = ['daytona'] as const;

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
  const { startDaytonaEmulator } = await import('@agentbox/emulators');
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
  const signal = ctx.interrupts.signal;
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await emulator.close();
  return ctx.interrupts.exitCode ?? 0;
};
