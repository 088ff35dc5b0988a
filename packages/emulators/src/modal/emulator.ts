/**
 * The Modal emulator: Modal's gRPC control plane (`modal.client.ModalClient`) and task command
 * router (`modal.task_command_router.TaskCommandRouter`) on one plaintext HTTP/2 port on
 * loopback, each sandbox a real Docker container. The unmodified `modal` SDK reaches it through
 * `MODAL_SERVER_URL=http://127.0.0.1:PORT` (or the client's `endpoint`): the SDK dials the router
 * (advertised as `https://127.0.0.1:PORT`) in plaintext when the control plane is on localhost.
 * Every method of both services has a handler: those not emulated answer UNIMPLEMENTED and log.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import Docker from 'dockerode';
import { type CallContext, createServer, ServerError, Status } from 'nice-grpc';
import { removeOwned } from '../server.js';
import { EmulatorAuth } from './auth.js';
import { commandRouterHandlers } from './command-router.js';
import { controlPlaneHandlers } from './control-plane.js';
import { modalDefinitions, type ServiceDefinition } from './definitions.js';
import type { ImageRecord, SandboxRecord } from './state.js';

export interface ModalEmulatorOptions {
  /** Port on 127.0.0.1 (0 or absent: any free port). */
  port?: number;
  /** The token pair clients must send; random when absent. */
  tokenId?: string;
  tokenSecret?: string;
  /**
   * Docker client; default the local daemon (DOCKER_HOST or the default socket).
   * @internal Its type is dockerode's, which the published types do not depend on.
   */
  docker?: Docker;
  /** Where log lines go (default stderr). */
  log?: (line: string) => void;
}

export interface ModalEmulator {
  /** The control-plane URL to give the SDK (MODAL_SERVER_URL or the client's `endpoint`). */
  url: string;
  tokenId: string;
  tokenSecret: string;
  /** This emulator's id: the value of INSTANCE_LABEL on every container and image it makes. */
  instance: string;
  /** The ids of sandboxes that are running (not terminated, not timed out). */
  runningSandboxes(): string[];
  /** Stop serving and remove every container and snapshot image this emulator made. */
  close(): Promise<void>;
}

export async function startModalEmulator(options: ModalEmulatorOptions = {}): Promise<ModalEmulator> {
  const definitions = modalDefinitions();
  const docker = options.docker ?? new Docker();
  const instance = randomUUID();
  const log = options.log ?? ((line: string) => process.stderr.write(`[modal-emulator] ${line}\n`));
  const auth = new EmulatorAuth(
    options.tokenId ?? `ak-${randomBytes(10).toString('hex')}`,
    options.tokenSecret ?? `as-${randomBytes(16).toString('hex')}`,
  );
  const images = new Map<string, ImageRecord>();
  const sandboxes = new Map<string, SandboxRecord>();
  const byTask = new Map<string, SandboxRecord>();
  let routerUrl = '';

  /** Container removals under way: close waits for them (Docker refuses a second removal meanwhile). */
  const removals = new Set<Promise<void>>();

  async function finish(sandbox: SandboxRecord, status: number, exception: string): Promise<void> {
    if (sandbox.finished) return;
    sandbox.finished = { status, exception };
    for (const timer of sandbox.timers) clearTimeout(timer);
    sandbox.events.emit('finished');
    log(`sandbox ${sandbox.id} ended: ${exception || 'terminated'}`);
    const removal = sandbox.container.remove({ force: true }).catch(() => {});
    removals.add(removal);
    await removal;
    removals.delete(removal);
  }

  const control = controlPlaneHandlers({
    auth,
    docker,
    instance,
    images,
    sandboxes,
    log,
    routerUrl: () => routerUrl,
    register(sandbox) {
      sandboxes.set(sandbox.id, sandbox);
      byTask.set(sandbox.taskId, sandbox);
      const end = (status: number, why: string) => void finish(sandbox, status, why);
      // Node's timers hold at most 2^31-1 ms (about 24.8 days); Modal's timeouts stay below that.
      const timeoutMs = Math.min(sandbox.timeoutSecs * 1000, 2 ** 31 - 1);
      sandbox.timers.push(setTimeout(() => end(4, 'sandbox timeout'), timeoutMs).unref());
      if (sandbox.idleTimeoutSecs !== undefined) {
        const idleMs = sandbox.idleTimeoutSecs * 1000;
        const check = () => {
          const busy = [...sandbox.execs.values()].some((e) => !e.exit);
          if (!busy && Date.now() - sandbox.lastActivity >= idleMs) end(4, 'idle timeout');
          else if (!sandbox.finished) sandbox.timers.push(setTimeout(check, Math.min(idleMs, 1000)).unref());
        };
        sandbox.timers.push(setTimeout(check, idleMs).unref());
      }
    },
    finish,
  });
  const router = commandRouterHandlers({
    instance,
    log,
    sandboxFor(taskId: string, context: CallContext) {
      const allowed = auth.routerSubject(context);
      if (allowed !== taskId)
        throw new ServerError(
          Status.PERMISSION_DENIED,
          `the router JWT is for task ${allowed}, not ${taskId}`,
        );
      const sandbox = byTask.get(taskId);
      if (!sandbox) throw new ServerError(Status.NOT_FOUND, `task ${taskId} not found`);
      if (sandbox.finished) throw new ServerError(Status.NOT_FOUND, `task ${taskId} has finished`);
      sandbox.lastActivity = Date.now();
      return sandbox;
    },
    addSnapshotImage(dockerImage: string) {
      const id = `im-${randomBytes(11).toString('hex')}`;
      images.set(id, { id, dockerImage, snapshot: true });
      return id;
    },
  });

  // Messages as large as the SDK's own channels allow (grpc-js would refuse over 4 MiB).
  const server = createServer({
    'grpc.max_receive_message_length': 100 * 1024 * 1024,
    'grpc.max_send_message_length': 100 * 1024 * 1024,
  });
  server.add(definitions.controlPlane as never, complete(definitions.controlPlane, control, log) as never);
  server.add(definitions.commandRouter as never, complete(definitions.commandRouter, router, log) as never);
  const port = await server.listen(`127.0.0.1:${options.port ?? 0}`);
  const url = `http://127.0.0.1:${port}`;
  routerUrl = `https://127.0.0.1:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    tokenId: auth.tokenId,
    tokenSecret: auth.tokenSecret,
    instance,
    runningSandboxes: () => [...sandboxes.values()].filter((s) => !s.finished).map((s) => s.id),
    close() {
      closing ??= (async () => {
        for (const sandbox of sandboxes.values()) for (const timer of sandbox.timers) clearTimeout(timer);
        server.forceShutdown();
        await Promise.all(removals);
        await removeOwned(docker, instance);
      })();
      return closing;
    },
  };
}

/**
 * A handler for every method of `service`: the implemented ones, and UNIMPLEMENTED (logged) for
 * the rest, so a call the SDK starts making shows up as a clear failure.
 */
function complete(
  service: ServiceDefinition,
  implemented: Record<string, unknown>,
  log: (line: string) => void,
): Record<string, unknown> {
  const handlers: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(service.methods)) {
    const known = implemented[key] as ((...args: unknown[]) => unknown) | undefined;
    const path = `/${service.fullName}/${method.name}`;
    if (known) {
      handlers[key] = known;
      continue;
    }
    const refuse = () => {
      log(`UNIMPLEMENTED ${path}`);
      return new ServerError(Status.UNIMPLEMENTED, `modal emulator: ${path} is not emulated`);
    };
    handlers[key] = method.responseStream
      ? // biome-ignore lint/correctness/useYield: refuses before the first message
        async function* () {
          throw refuse();
        }
      : async () => {
          throw refuse();
        };
  }
  return handlers;
}
