/**
 * The `$SYS/broker/...` topics in Mosquitto's layout and with its rules:
 * - `version` is published once, at start; everything else every `interval` seconds (Mosquitto's
 *   sys_interval), `uptime` each time and the others only when their value changed;
 * - every message is retained (apart from the clients' retained messages: state.ts
 *   `sysRetained`, never stored, no quota), at QoS 2, and all but `version` expire after 60 s;
 * - `load/.../1min|5min|15min` are Mosquitto's exponentially weighted moving averages of the rate
 *   per minute: with dt the seconds since the last update and r the count in that time times
 *   60 / dt, each average moves to r + e^(-dt / window) × (average − r); it is published with two
 *   decimals when it moved by 0.01 or more (the first update publishes 0.00).
 * Only a filter starting with '$' matches these topics (a `#` subscription never sees them)
 * [MQTT-4.7.2-1], and clients cannot publish there (handlers/publish.ts). The updates are an item
 * on the broker's timer wheel, so an injected clock and ticker drive them in tests.
 */
import { Buffer } from 'node:buffer';
import { VERSION } from '../version.js';
import { createMessage } from './message.js';
import { brokerMetrics } from './metrics-snapshot.js';
import type { BrokerState } from './state.js';

const PREFIX = '$SYS/broker/';
/** Seconds a $SYS message lives, as Mosquitto sets it (`version` does not expire). */
const EXPIRY = 60;
const QOS = 2;
/** The load averages' windows: topic suffix and seconds. */
const WINDOWS: readonly [string, number][] = [['1min', 60], ['5min', 300], ['15min', 900]];
/** Counters with a load average, by their topic under `load/`. */
const LOADS = [
  'messages/received', 'messages/sent', 'publish/dropped', 'publish/received', 'publish/sent', 'bytes/received', 'bytes/sent',
  'sockets', 'connections',
] as const;
type LoadName = (typeof LOADS)[number];

const sum = (a: Float64Array): number => a.reduce((x, y) => x + y, 0);

export class SysTopics {
  readonly intervalMs: number;
  readonly #st: BrokerState;
  /** The payload last published per topic: unchanged values are not published again. */
  readonly #last = new Map<string, string>();
  /** Current load averages, by `load/...` topic. */
  readonly #loads = new Map<string, number>();
  /** The counters at the last update (for the load averages). */
  #previous: Record<LoadName, number> | undefined;
  #lastUpdate = 0;
  #clientsMaximum = 0;
  #heapMaximum = 0;

  constructor(st: BrokerState, intervalSeconds: number) {
    this.#st = st;
    this.intervalMs = intervalSeconds * 1000;
  }

  /** Publishes `version` and the first update, and puts the next one on the timer wheel. */
  start(now: number): void {
    this.#publish('version', `petrel version ${VERSION}`, now, false);
    this.update(now);
  }

  /** The wheel reached this item: updates when the interval is over (else waits for it). */
  fire(now: number): void {
    const due = this.#lastUpdate + this.intervalMs;
    if (now < due) this.#st.wheel.schedule(this, due);
    else this.update(now);
  }

  /** Publishes what changed since the last update and schedules the next one. */
  update(now: number): void {
    const st = this.#st;
    const m = brokerMetrics(st);
    const c = st.counters;
    this.#publish('uptime', `${Math.floor(m.uptime)} seconds`, now, true);

    const total = m.sessions.total;
    this.#changed('clients/total', total, now);
    if (total > this.#clientsMaximum) {
      this.#clientsMaximum = total;
      this.#changed('clients/maximum', total, now);
    }
    this.#changed('clients/connected', m.clients.connected, now);
    this.#changed('clients/disconnected', total - m.clients.connected, now);
    this.#changed('clients/expired', m.sessions.expired, now);

    const counts: Record<LoadName, number> = {
      'messages/received': sum(c.packetsIn), 'messages/sent': sum(c.packetsOut), 'publish/dropped': st.stats.messagesDropped,
      'publish/received': m.received.publish.packets, 'publish/sent': m.sent.publish.packets,
      'bytes/received': sum(c.bytesIn), 'bytes/sent': sum(c.bytesOut), sockets: m.sockets, connections: m.connects,
    };
    this.#updateLoads(counts, now);

    this.#changed('subscriptions/count', m.subscriptions.total, now);
    this.#changed('shared_subscriptions/count', m.subscriptions.shared, now);
    this.#changed('retained messages/count', m.retained.messages, now);
    const heap = process.memoryUsage().heapUsed;
    this.#changed('heap/current', heap, now);
    if (heap > this.#heapMaximum) {
      this.#heapMaximum = heap;
      this.#changed('heap/maximum', heap, now);
    }
    this.#changed('messages/received', counts['messages/received'], now);
    this.#changed('messages/sent', counts['messages/sent'], now);
    this.#changed('publish/messages/dropped', counts['publish/dropped'], now);
    this.#changed('publish/messages/received', counts['publish/received'], now);
    this.#changed('publish/messages/sent', counts['publish/sent'], now);
    this.#changed('bytes/received', counts['bytes/received'], now);
    this.#changed('bytes/sent', counts['bytes/sent'], now);
    this.#changed('publish/bytes/received', m.received.publish.bytes, now);
    this.#changed('publish/bytes/sent', m.sent.publish.bytes, now);

    this.#lastUpdate = now;
    st.wheel.schedule(this, now + this.intervalMs);
  }

  #updateLoads(counts: Record<LoadName, number>, now: number): void {
    const previous = this.#previous;
    this.#previous = counts;
    const dt = (now - this.#lastUpdate) / 1000;
    for (const name of LOADS) {
      // Counts per minute over the last interval.
      const rate = previous === undefined || dt <= 0 ? 0 : (counts[name] - previous[name]) * (60 / dt);
      for (const [suffix, window] of WINDOWS) {
        const topic = `load/${name}/${suffix}`;
        const current = this.#loads.get(topic) ?? 0;
        if (previous === undefined) {
          this.#publish(topic, current.toFixed(2), now, true);
          this.#loads.set(topic, current);
          continue;
        }
        if (dt <= 0) continue;
        const next = rate + Math.exp(-dt / window) * (current - rate);
        if (Math.abs(next - current) >= 0.01) this.#publish(topic, next.toFixed(2), now, true);
        this.#loads.set(topic, next);
      }
    }
  }

  #changed(topic: string, value: number, now: number): void {
    const payload = String(value);
    if (this.#last.get(topic) !== payload) this.#publish(topic, payload, now, true);
  }

  #publish(topic: string, payload: string, now: number, expires: boolean): void {
    this.#last.set(topic, payload);
    this.#st.publishSys(createMessage({
      topic: PREFIX + topic, payload: Buffer.from(payload), qos: QOS, retain: true,
      properties: expires ? { messageExpiryInterval: EXPIRY } : undefined, now,
    }));
  }
}
