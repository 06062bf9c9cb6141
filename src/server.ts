/** The standalone server: configuration → logger → broker → listener. */
import type { ServerConfig } from './config/schema.js';
import { createLogger, type Logger } from './observability/logger.js';
import { type Broker, createBroker } from './petrel.js';
import type { Listener } from './transport/tcp.js';

export interface RunningServer {
  broker: Broker;
  listener: Listener;
  logger: Logger;
  /**
   * Re-reads what can change without a restart (SIGHUP). Nothing is reloadable yet; password
   * and ACL files will be re-read here. Never stops the server.
   */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const broker = createBroker({ ...config.broker, logger });
  const listener = await broker.listen({ port: config.port, host: config.host, portFallback: config.portFallback });
  // The start-up record: supervisors and tests read the bound port from it.
  logger.info({ host: listener.host, port: listener.port }, 'listening');
  return {
    broker,
    listener,
    logger,
    reload: async () => {
      logger.info({ reloaded: [] }, 'reload requested');
    },
    stop: () => broker.close(),
  };
}
