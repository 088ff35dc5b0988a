/**
 * A byte-for-byte proxy a fault test owns, put between a backend and a real service (sshd on a
 * TCP port, dockerd on its unix socket, an emulator's HTTP port), so that the test can cut every
 * connection through it at a moment it chooses, or stop listening altogether, without touching
 * the service other tests and agents share.
 */
import { createServer, connect as dial, type Server, type Socket } from 'node:net';

/** Where the proxy listens or dials: a TCP port on 127.0.0.1 or a unix socket path. */
export type Address = { port: number } | { path: string };

export interface FaultProxy {
  /** Where clients reach the proxy (a port for TCP, the path for a unix socket). */
  readonly address: Address;
  /** Connections accepted since the proxy started. */
  readonly accepted: number;
  /** Connections open right now. */
  readonly open: number;
  /** Destroy every open connection, both sides, at once (no FIN: a reset, as a dead host gives). */
  cut(): void;
  /** Cut every connection and stop listening: new connections are refused. */
  stop(): Promise<void>;
  /** Listen again on the same address after `stop`. */
  restart(): Promise<void>;
}

/** Start a proxy to `target`, listening on `listen` (default: any free TCP port on 127.0.0.1). */
export async function startFaultProxy(target: Address, listen: Address = { port: 0 }): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let server: Server | undefined;
  let address = listen;

  const accept = (client: Socket) => {
    accepted++;
    // Half-open both ways: a client that closes its writing side (stdin done) still reads the answer.
    const upstream = dial({ ...target, allowHalfOpen: true });
    for (const side of [client, upstream]) {
      sockets.add(side);
      side.on('error', () => {});
      side.once('close', () => {
        sockets.delete(side);
        // One side gone: the other goes too, as a broken connection would.
        (side === client ? upstream : client).destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  };

  const listenOn = async (where: Address) => {
    const next = createServer({ allowHalfOpen: true }, accept);
    await new Promise<void>((resolve, reject) => {
      next.once('error', reject);
      if ('path' in where) next.listen(where.path, resolve);
      else next.listen(where.port, '127.0.0.1', resolve);
    });
    server = next;
    const bound = next.address();
    address = 'path' in where ? where : { port: typeof bound === 'object' && bound ? bound.port : 0 };
  };

  const cut = () => {
    for (const socket of sockets) {
      try {
        socket.resetAndDestroy(); // TCP: an RST
      } catch {
        socket.destroy(); // a unix socket has no reset
      }
    }
    sockets.clear();
  };

  await listenOn(listen);
  return {
    get address() {
      return address;
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size / 2;
    },
    cut,
    async stop() {
      const closing = server;
      server = undefined;
      const closed = closing && new Promise<void>((resolve) => closing.close(() => resolve()));
      cut();
      await closed;
    },
    async restart() {
      if (!server) await listenOn(address);
    },
  };
}
