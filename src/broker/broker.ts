/**
 * The broker core: accepts any Duplex byte stream (`handle`), publishes on behalf of the
 * server, and reports clients and subscriptions. Listeners live outside (see src/petrel.ts).
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { MqttError, PacketType, type Properties, ProtocolVersion, type QoS, ReasonCode, topicNameProblem } from '../protocol/index.js';
import { silentLogger } from '../observability/logger.js';
import { systemClock } from '../session/clock.js';
import { Connection } from './connection.js';
import type { BrokerEvents, ClientInfo } from './events.js';
import { createMessage } from './message.js';
import { type BrokerOptions, resolveOptions } from './options.js';
import { BrokerState, type BrokerStats } from './state.js';

export interface PublishOptions {
  topic: string;
  payload: Buffer | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
}

export interface SubscriptionInfo {
  topicFilter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionIdentifier: number | undefined;
}

export class BrokerCore {
  readonly #state: BrokerState;

  constructor(options: BrokerOptions = {}) {
    const resolved = resolveOptions(options, { logger: silentLogger, clock: systemClock });
    this.#state = new BrokerState(resolved, options);
  }

  /** Serves an MQTT connection over any duplex byte stream (TCP socket, TLS, WebSocket, in-process pair). */
  handle(stream: Duplex, remoteAddress?: string): void {
    const st = this.#state;
    if (st.closing) {
      stream.destroy();
      return;
    }
    st.stats.connectionsAccepted++;
    const conn = new Connection(st, stream, remoteAddress);
    st.streams.add(conn);
    // A connection that never completes CONNECT is closed when its deadline fires (timers.ts).
    if (st.options.connectTimeout > 0) st.wheel.schedule(conn, conn.lastSeen + st.options.connectTimeout * 1000);
  }

  /** Publishes a message from the broker itself; resolves with the number of receivers. */
  async publish(message: PublishOptions): Promise<number> {
    const problem = topicNameProblem(message.topic);
    if (problem !== undefined) throw new MqttError(ReasonCode.TopicNameInvalid, problem);
    const st = this.#state;
    const payload = typeof message.payload === 'string' ? Buffer.from(message.payload) : message.payload;
    const msg = createMessage({
      // Without retainAvailable nothing is retained, whoever publishes.
      topic: message.topic, payload, qos: message.qos ?? 0, retain: (message.retain ?? false) && st.options.retainAvailable,
      properties: message.properties, now: st.clock.now(),
    });
    st.stats.messagesReceived++;
    const n = st.publish(msg);
    st.emitPublished(msg);
    return n;
  }

  /** Connected clients. */
  clients(): ClientInfo[] {
    return [...this.#state.connections.values()].map((c) => c.info as ClientInfo);
  }

  /** Subscriptions of a session (connected or not); undefined when there is no such session. */
  subscriptions(clientId: string): SubscriptionInfo[] | undefined {
    const session = this.#state.sessions.get(clientId);
    if (session === undefined) return undefined;
    return [...session.subscriptions.entries()].map(([topicFilter, r]) => ({
      topicFilter, qos: r.qos, noLocal: r.noLocal, retainAsPublished: r.retainAsPublished,
      retainHandling: r.retainHandling, subscriptionIdentifier: r.subIds?.[0],
    }));
  }

  /**
   * Disconnects a client on the operator's behalf: 5.0 clients get DISCONNECT with `reasonCode`
   * (default 0x98 Administrative Action) and optionally a Server Reference (0x9C / 0x9D).
   */
  disconnect(clientId: string, reasonCode: number = ReasonCode.AdministrativeAction, serverReference?: string): boolean {
    const conn = this.#state.connections.get(clientId);
    if (conn === undefined) return false;
    conn.fail(new MqttError(reasonCode, 'disconnected by the broker'), serverReference === undefined ? undefined : { serverReference });
    return true;
  }

  get stats(): Readonly<BrokerStats> {
    return this.#state.stats;
  }

  // The casts below only bridge Node's conditional listener type, which TypeScript cannot resolve
  // for a generic event name; the public signatures are exact.
  on<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.#state.events.on(event, listener as never);
    return this;
  }

  once<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.#state.events.once(event, listener as never);
    return this;
  }

  off<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.#state.events.off(event, listener as never);
    return this;
  }

  /** Disconnects every client (5.0: DISCONNECT 0x8B) and stops the timers. */
  async closeConnections(): Promise<void> {
    const st = this.#state;
    st.closing = true;
    const closed: Promise<void>[] = [];
    for (const conn of [...st.streams]) {
      closed.push(new Promise((resolve) => {
        if (conn.stream.destroyed) resolve();
        else conn.stream.once('close', () => resolve());
      }));
      if (conn.phase === 'connected' && conn.version === ProtocolVersion.V5) {
        conn.send({ type: PacketType.Disconnect, reasonCode: ReasonCode.ServerShuttingDown });
      }
      conn.close(undefined);
    }
    st.stop();
    await Promise.all(closed);
  }
}
