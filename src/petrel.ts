/**
 * The embeddable broker: the broker core plus listeners. Composition root: the only place,
 * with server.ts, that joins broker/ and transport/.
 */
import { duplexPair } from 'node:stream';
import { BrokerCore } from './broker/broker.js';
import { connect, type MqttClient } from './client/client.js';
import type { ClientOptions } from './client/options.js';
import type { ListenerInfo } from './transport/types.js';
import type { BrokerOptions } from './broker/options.js';
import { type Listener, type ListenOptions, listen } from './transport/listener.js';

export class Broker extends BrokerCore {
  readonly #listeners: Listener[] = [];
  /** What in-process clients' metadata names as their listener. */
  readonly #local: ListenerInfo = { name: 'local', type: 'local', host: '', port: 0 };

  /**
   * An in-process client: Petrel's MQTT client over a stream pair, no socket. It is a client like
   * any other (sessions, QoS, retained messages, wills, hooks and ACLs apply; its metadata names
   * the listener "local"). Keep alive defaults to 0 (off) here. Resolves once CONNACK accepted it.
   */
  async connectLocal(options: ClientOptions = {}): Promise<MqttClient> {
    if (this.closed) throw new BrokerClosedError();
    const [client, server] = duplexPair();
    this.handle(server, { remoteAddress: undefined, remotePort: undefined, listener: this.#local });
    return connect(client, { keepalive: 0, ...options });
  }

  /**
   * Listens for MQTT over TCP (default), TLS, WebSocket or secure WebSocket (`type`); call it once
   * per listener, they all serve this broker. `port: 0` picks a free port; read it back from the result.
   * Rejects with BrokerClosedError once the broker is closed (it would drop every client).
   */
  async listen(options: ListenOptions = {}): Promise<Listener> {
    if (this.closed) throw new BrokerClosedError();
    await this.restore();
    const listener = await listen((stream, meta) => this.handle(stream, meta), {
      // A WebSocket message may hold several packets, but never needs to be much larger than one.
      maxPayload: Math.max(this.maxPacketSize, 64 * 1024) + 64 * 1024,
      ...options,
    });
    if (this.closed) {
      // close() ran while the port was being bound: release it rather than serve no one.
      await listener.close();
      throw new BrokerClosedError();
    }
    this.#listeners.push(listener);
    return listener;
  }

  get listeners(): readonly Listener[] {
    return this.#listeners;
  }

  /** Stops accepting, disconnects every client and releases the ports. */
  async close(): Promise<void> {
    const listeners = this.#listeners.splice(0);
    await this.closeConnections();
    await Promise.all(listeners.map((l) => l.close()));
  }
}

/** `listen()` on a broker that was closed. */
export class BrokerClosedError extends Error {
  constructor() {
    super('the broker is closed');
    this.name = 'BrokerClosedError';
  }
}

/** Creates a broker; nothing listens until `listen()` is called. Throws OptionsError for a bad option. */
export function createBroker(options: BrokerOptions = {}): Broker {
  return new Broker(options);
}
