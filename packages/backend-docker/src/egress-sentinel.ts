/**
 * The sentinel of a network allowlist: it hears what the sandbox dials off its network, for the
 * operator's denial log. A bridge cannot carry those packets to a listener elsewhere (on an
 * internal network the daemon's firewall drops every packet bound outside the subnet), so the
 * sentinel joins the sandbox's own network namespace: there every address off the subnet becomes
 * local (two `local` routes in the main table, which the subnet's own route still beats), and a
 * listener on the allowlist's ports reports each connection it takes, `address:port` as the
 * sandbox dialled it, on its stdout, which the library follows into the log. Nothing leaves:
 * those connections end where they began. Other ports answer with a reset, and the sandbox's
 * kernel ignores pings (a sysctl set when the sandbox is created).
 *
 * Two containers, so that what the sandbox can connect to never holds a capability: a holder,
 * root with NET_ADMIN only, adds the routes and sleeps; a listener, uid 1000 with no capability,
 * shares the namespace and does the rest.
 *
 * Limits: lookups of names not on the list fail (the daemon's resolver has no server to ask) but
 * are not logged: the busybox helper image has no UDP server to hear them with. Under gVisor the
 * sandbox's network stack is gVisor's own and does not see the routes: nothing is logged there.
 */
import { SandboxUnavailableError } from '@agentbox/core';
import { type EgressDenialLog, type ErrorContext, shellQuote } from '@agentbox/core/backend';
import type Docker from 'dockerode';
import type { DockerClient } from './client.js';
import { DockerDemuxer } from './demux.js';
import { labelsFor, names } from './labels.js';

/**
 * Run per connection, with the connection as fds 0-2 and the sentinel's stdout as fd 3: find
 * the socket's local address (the destination the sandbox dialled) in /proc/net by inode.
 */
const REPORT = [
  'i=$(readlink /proc/self/fd/0); i=${i#socket:\\[}; i=${i%]}',
  // nc listens on IPv6 too: an IPv4 connection there is in tcp6, its address the last 8 digits.
  'cat /proc/net/tcp6 /proc/net/tcp 2>/dev/null | while read -r _ l _ _ _ _ _ _ _ n _; do',
  '  [ "$n" = "$i" ] || continue',
  '  a=${l%:*}; a=${a#"${a%????????}"}',
  `  printf 'd {"protocol":"tcp","destination":"%d.%d.%d.%d:%d"}\\n' 0x\${a:6:2} 0x\${a:4:2} 0x\${a:2:2} 0x\${a:0:2} 0x\${l#*:} >&3`,
  '  break',
  'done',
].join('\n');

/** The holder, as root: every address off the sandbox's subnet becomes local to its namespace. */
const HOLD = [
  'set -e',
  'ip route add local 0.0.0.0/1 dev lo table main',
  'ip route add local 128.0.0.0/1 dev lo table main',
  "trap 'exit 0' TERM INT",
  'echo ready',
  'while :; do sleep 3600 & wait $!; done',
].join('\n');

/** The listener, unprivileged, in the holder's network namespace: one `nc` per allowed port. */
function listenScript(ports: readonly number[]): string {
  return [
    "trap 'exit 0' TERM INT",
    'exec 3>&1',
    ...ports.map((p) => `nc -ll -p ${p} -e sh -c ${shellQuote(REPORT)} &`),
    'echo ready',
    'wait',
  ].join('\n');
}

export interface SentinelOptions {
  client: DockerClient;
  sandboxId: string;
  /** The sandbox's container, whose network namespace the sentinel joins. */
  containerId: string;
  /** The allowlist's ports, where connections to other addresses are heard. */
  ports: readonly number[];
  image: string;
  labels: Record<string, string>;
  createdAt: string;
  context: ErrorContext;
}

const READY_MS = 15_000;

/** Create and start the sentinel; resolves once the routes are in place and it listens. */
export async function startSentinel(o: SentinelOptions): Promise<void> {
  const { docker } = o.client;
  const common = {
    Image: o.image,
    Entrypoint: [],
    Labels: labelsFor(o.sandboxId, 'egress-sentinel', o.createdAt, o.labels),
  };
  const limits = {
    CapDrop: ['ALL'],
    ReadonlyRootfs: true,
    SecurityOpt: ['no-new-privileges'],
    PidsLimit: 256,
    Memory: 64 * 1024 * 1024,
    MemorySwap: 64 * 1024 * 1024,
    RestartPolicy: { Name: 'no' },
  };
  const holder = await docker.createContainer({
    ...common,
    name: names.sentinel(o.sandboxId),
    Cmd: ['/bin/sh', '-c', HOLD],
    User: '0:0',
    HostConfig: {
      ...limits,
      NetworkMode: `container:${o.containerId}`,
      CapAdd: ['NET_ADMIN'],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '64k', 'max-file': '1' } },
    },
  });
  await holder.start();
  await ready(holder, o);
  const listener = await docker.createContainer({
    ...common,
    name: names.sentinelListener(o.sandboxId),
    Cmd: ['/bin/sh', '-c', listenScript(o.ports)],
    User: '1000:1000',
    HostConfig: {
      ...limits,
      NetworkMode: `container:${holder.id}`,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  });
  await listener.start();
  await ready(listener, o);
}

async function ready(container: Docker.Container, o: SentinelOptions): Promise<void> {
  if (await waitForLine(container, 'ready', READY_MS)) return;
  throw new SandboxUnavailableError(
    `the egress sentinel of ${o.sandboxId} did not start within ${READY_MS / 1000} s (its log: ${(await tail(container)) || 'empty'})`,
    o.context,
  );
}

async function tail(container: Docker.Container): Promise<string> {
  const raw = (await container
    .logs({ stdout: true, stderr: true, tail: 20 })
    .catch(() => Buffer.alloc(0))) as Buffer;
  const text: string[] = [];
  new DockerDemuxer((_s, chunk) => text.push(chunk.toString())).push(raw);
  return text.join('').trim().slice(-500);
}

async function waitForLine(container: Docker.Container, line: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await tail(container)).split('\n').includes(line)) return true;
    const state = (await container.inspect()).State;
    if (!state.Running) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

/**
 * Follow the sentinel's reports into `log` from `sinceSeconds` on (a re-attach starts at its own
 * time; what came between processes stays in the sentinel's container log). Returns a stop function.
 */
export async function followSentinel(
  client: DockerClient,
  sandboxId: string,
  log: EgressDenialLog,
  sinceSeconds: number,
): Promise<() => void> {
  const container = client.docker.getContainer(names.sentinelListener(sandboxId));
  const stream = (await container.logs({
    follow: true,
    stdout: true,
    stderr: false,
    since: sinceSeconds,
  })) as NodeJS.ReadableStream & { destroy(): void };
  let pending = '';
  const demux = new DockerDemuxer((_s, chunk) => {
    pending += chunk.toString('utf8');
    let nl = pending.indexOf('\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith('d ')) log.report(line.slice(2));
      nl = pending.indexOf('\n');
    }
    // A line without an end is not a report the sentinel wrote: bounded, then dropped.
    if (pending.length > 4096) pending = '';
  });
  stream.on('data', (chunk: Buffer) => demux.push(chunk));
  stream.on('error', () => {});
  return () => stream.destroy();
}
