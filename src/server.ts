/** The standalone server: configuration → logger → broker → listeners. */
import type { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { type ListenerConfig, listenersOf, type ServerConfig } from './config/schema.js';
import { createLogger, type Logger } from './observability/logger.js';
import { type Broker, createBroker } from './petrel.js';
import type { Listener, ListenOptions } from './transport/listener.js';
import type { TlsCredentials } from './transport/tls.js';

export interface RunningServer {
  broker: Broker;
  /** The first listener (TCP unless the configuration says otherwise). */
  listener: Listener;
  listeners: Listener[];
  logger: Logger;
  /**
   * Re-reads what can change without a restart (SIGHUP): the certificates and keys of the TLS
   * and secure WebSocket listeners (open connections keep theirs). A file that cannot be read
   * or does not make a valid certificate leaves that listener as it was. Never stops the server.
   */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/** Reads a listener's certificate files (PEM). Throws, naming the file, when one cannot be read. */
function credentialsOf(l: ListenerConfig): TlsCredentials {
  const read = (file: string): Buffer => readFileSync(file);
  return {
    cert: read(l.cert as string), key: read(l.key as string),
    ...(l.ca !== undefined ? { ca: read(l.ca) } : {}),
    ...(l.passphrase !== undefined ? { passphrase: l.passphrase } : {}),
  };
}

function listenOptionsOf(l: ListenerConfig, config: ServerConfig): ListenOptions {
  const secure = l.type === 'tls' || l.type === 'wss';
  return {
    type: l.type,
    ...(l.name !== undefined ? { name: l.name } : {}),
    ...(l.port !== undefined ? { port: l.port } : {}),
    host: l.host ?? config.host,
    portFallback: config.portFallback,
    ...(secure ? credentialsOf(l) : {}),
    ...(l.minVersion !== undefined ? { minVersion: l.minVersion } : {}),
    ...(l.requestCert !== undefined ? { requestCert: l.requestCert } : {}),
    ...(l.requireCert !== undefined ? { requireCert: l.requireCert } : {}),
    ...(l.certUsername !== undefined ? { certUsername: l.certUsername } : {}),
    ...(l.path !== undefined ? { path: l.path } : {}),
    ...(l.proxyProtocol !== undefined ? { proxyProtocol: l.proxyProtocol } : {}),
    ...(l.proxyTimeout !== undefined ? { proxyTimeout: l.proxyTimeout * 1000 } : {}),
    limits: {
      maxConnections: l.maxConnections ?? 0,
      maxConnectionRate: l.maxConnectionRate ?? 0,
      maxConnectionRatePerSource: l.maxConnectionRatePerSource ?? 0,
    },
  };
}

export async function startServer(config: ServerConfig, logger: Logger = createLogger(config.logLevel)): Promise<RunningServer> {
  const specs = listenersOf(config);
  const broker = createBroker({ ...config.broker, logger });
  const listeners: Listener[] = [];
  try {
    for (const spec of specs) {
      const listener = await broker.listen(listenOptionsOf(spec, config));
      listeners.push(listener);
      // The start-up records, one per listener: supervisors and tests read the bound ports from them.
      logger.info({ listener: listener.name, type: listener.type, host: listener.host, port: listener.port }, 'listening');
    }
  } catch (err) {
    await broker.close();
    throw err;
  }
  return {
    broker,
    listener: listeners[0] as Listener,
    listeners,
    logger,
    reload: async () => {
      const reloaded: string[] = [];
      specs.forEach((spec, i) => {
        const listener = listeners[i] as Listener;
        if (spec.type !== 'tls' && spec.type !== 'wss') return;
        try {
          listener.setCredentials(credentialsOf(spec));
          reloaded.push(listener.name);
        } catch (err) {
          logger.error({ err, listener: listener.name, kept: 'the previous certificate' }, 'certificate reload failed');
        }
      });
      logger.info({ reloaded }, 'reload requested');
    },
    stop: () => broker.close(),
  };
}
