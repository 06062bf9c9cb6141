/** TCP listener: hands every accepted socket to a connection handler as a Duplex. */
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

export type StreamHandler = (stream: Duplex, remoteAddress: string | undefined) => void;

export interface ListenOptions {
  port?: number;
  host?: string;
  /** When the port is taken, try the following ports (up to this many). Default 0: fail. */
  portFallback?: number;
}

export interface Listener {
  readonly protocol: 'tcp';
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

function listenOnce(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, backlog: 4096 });
  });
}

/**
 * The peer's address. Reading `remoteAddress` makes Node keep the whole peer name on the socket
 * ({ address, family, port }: 56 bytes and its strings, per connection, for the connection's
 * life); the broker keeps only the address string, so the cached object is let go (Node reads it
 * again from the socket if anyone asks later).
 */
function remoteAddressOf(socket: Socket): string | undefined {
  const address = socket.remoteAddress;
  const cached = socket as unknown as { _peername?: unknown };
  if (cached._peername !== undefined) cached._peername = undefined;
  return address;
}

/** Listens on `port` (0: any free port); with `portFallback` picks the next free port when taken. */
export async function listenTcp(handler: StreamHandler, options: ListenOptions = {}): Promise<Listener> {
  // Sockets are owned by the handler (the broker closes them); the listener keeps no per-socket state.
  const server = createServer({ noDelay: true }, (socket: Socket) => handler(socket, remoteAddressOf(socket)));
  const first = options.port ?? 1883;
  const tries = first === 0 ? 1 : 1 + (options.portFallback ?? 0);
  let lastError: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      await listenOnce(server, first + i, options.host);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  if (lastError !== undefined) throw lastError;
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : first;
  return {
    protocol: 'tcp',
    host: options.host ?? '0.0.0.0',
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
