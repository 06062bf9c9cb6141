/** The standalone server: configuration → logger → broker → listener. */
import type { ServerConfig } from './config/schema.js';
import { createLogger } from './observability/logger.js';
import { type Broker, createBroker } from './petrel.js';
import type { Listener } from './transport/tcp.js';

export interface RunningServer {
  broker: Broker;
  listener: Listener;
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const logger = createLogger(config.logLevel);
  const broker = createBroker({ ...config.broker, logger });
  broker.on('clientConnected', (c) => logger.debug({ clientId: c.clientId, remote: c.remoteAddress }, 'client connected'));
  broker.on('connectionLost', (c, err) => logger.debug({ clientId: c.clientId, err: err?.message }, 'connection lost'));
  const listener = await broker.listen({ port: config.port, host: config.host, portFallback: config.portFallback });
  logger.info({ host: listener.host, port: listener.port }, 'listening');
  return { broker, listener, stop: () => broker.close() };
}
