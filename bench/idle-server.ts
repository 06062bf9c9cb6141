/**
 * The two servers the idle-connection benchmarks compare: Petrel at its defaults, and a bare
 * Node.js TCP server that answers CONNECT with a fixed CONNACK and keeps nothing else (the floor
 * any Node.js broker starts from). Returns the port it listens on, on 127.0.0.1.
 */
import { createServer, type Socket } from 'node:net';
import { createBroker } from '../src/index.js';

export async function listenIdleServer(kind: string): Promise<number> {
  if (kind === 'petrel') {
    const broker = createBroker();
    return (await broker.listen({ port: 0, host: '127.0.0.1' })).port;
  }
  const connack = Buffer.from([0x20, 0x02, 0x00, 0x00]);
  const server = createServer({ noDelay: true }, (s: Socket) => s.once('data', () => s.write(connack)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}
