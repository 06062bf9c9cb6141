/** Aedes 1.x on a plain TCP server, for comparison. Usage: node aedes-server.js <port> <host> */
import net from 'node:net';
import { Aedes } from 'aedes';

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const host = process.argv[3] ?? '127.0.0.1';
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  server.listen(port, host);
  const stop = (): void => {
    server.close();
    broker.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`aedes-server: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
