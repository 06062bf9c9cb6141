/**
 * Prometheus metrics for a broker: `createMetrics(broker)` returns what an HTTP server needs to
 * answer GET /metrics (`contentType`, `render()`) and the prom-client registry behind it.
 *
 * Nothing here runs per packet: the broker counts with plain increments (broker/counters.ts) and
 * every metric below is filled from one `broker.metrics()` snapshot when the registry is read
 * (prom-client `collect` callbacks; the snapshot is shared by all of them within one read).
 * Names carry the prefix (default `petrel_`) and Prometheus unit suffixes (`_total`, `_bytes`,
 * `_seconds`); process and Node.js metrics (CPU, memory, event-loop lag, GC) come from
 * prom-client's default collectors under the same prefix.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, type HistogramConfiguration, type LabelValues, Registry } from 'prom-client';
import type { BrokerMetrics, HistogramSnapshot, PacketName } from '../broker/index.js';

export interface MetricsOptions {
  /** Prefix of every metric name. Default 'petrel_'. */
  prefix?: string;
  /** Also collect process and Node.js metrics (CPU, memory, event-loop lag, GC). Default true. */
  defaultMetrics?: boolean;
}

export interface PetrelMetrics {
  /** The Content-Type of `render()`'s text (Prometheus text format 0.0.4). */
  contentType: string;
  /** The metrics as Prometheus text. */
  render(): Promise<string>;
  registry: Registry;
}

/** What createMetrics reads: any broker (BrokerCore or Broker). */
export interface MetricsSource {
  metrics(): BrokerMetrics;
}

type Labels<L extends string> = LabelValues<L>;
type Rows<L extends string> = Iterable<readonly [Labels<L>, number]>;
type HistogramData = Awaited<ReturnType<Histogram<string>['get']>>;

/**
 * A histogram whose buckets are kept by the broker (a HistogramSnapshot per label set) and
 * exported as they are when the registry is read; it is never observed through prom-client.
 */
class SnapshotHistogram<L extends string> extends Histogram<L> {
  readonly #name: string;
  readonly #help: string;
  readonly #rows: () => Iterable<readonly [Labels<L>, HistogramSnapshot]>;

  constructor(config: HistogramConfiguration<L>, rows: () => Iterable<readonly [Labels<L>, HistogramSnapshot]>) {
    super(config);
    this.#name = config.name;
    this.#help = config.help;
    this.#rows = rows;
  }

  override async get(): Promise<HistogramData> {
    return this.#export();
  }

  /** What the registry reads for the text format (prom-client calls it instead of get()). */
  async getForPromString(): Promise<HistogramData> {
    return this.#export();
  }

  #export(): HistogramData {
    const values: HistogramData['values'] = [];
    const bucket = `${this.#name}_bucket`;
    for (const [labels, h] of this.#rows()) {
      let acc = 0;
      h.bounds.forEach((le, i) => {
        acc += h.counts[i] as number;
        values.push({ metricName: bucket, labels: { ...labels, le }, value: acc });
      });
      values.push({ metricName: bucket, labels: { ...labels, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${this.#name}_sum`, labels, value: h.sum });
      values.push({ metricName: `${this.#name}_count`, labels, value: h.count });
    }
    // prom-client's own objects carry the type as a string; its typings name an enum.
    return { name: this.#name, help: this.#help, type: 'histogram' as unknown as HistogramData['type'], aggregator: 'sum', collect: () => undefined, values };
  }
}

const PACKET_NAMES_OF = (m: BrokerMetrics): PacketName[] => Object.keys(m.received) as PacketName[];

/** Prometheus metrics of `broker`, in a registry of their own. */
export function createMetrics(broker: MetricsSource, options: MetricsOptions = {}): PetrelMetrics {
  const prefix = options.prefix ?? 'petrel_';
  const registry = new Registry();
  const registers = [registry];

  // One snapshot per read of the registry: every collect callback of that read shares it.
  let current: BrokerMetrics | undefined;
  const snap = (): BrokerMetrics => {
    if (current === undefined) {
      current = broker.metrics();
      queueMicrotask(() => {
        current = undefined;
      });
    }
    return current;
  };

  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], rows: (m: BrokerMetrics) => Rows<L>): void => {
    new Counter<L>({
      name: prefix + name, help, labelNames, registers,
      collect(this: Counter<L>) {
        this.reset();
        for (const [labels, value] of rows(snap())) this.inc(labels, value);
      },
    });
  };
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], rows: (m: BrokerMetrics) => Rows<L>): void => {
    new Gauge<L>({
      name: prefix + name, help, labelNames, registers,
      collect(this: Gauge<L>) {
        this.reset();
        for (const [labels, value] of rows(snap())) this.set(labels, value);
      },
    });
  };
  const one = (value: (m: BrokerMetrics) => number) => (m: BrokerMetrics): Rows<never> => [[{}, value(m)]];
  const histogram = <L extends string>(
    name: string, help: string, labelNames: readonly L[], rows: (m: BrokerMetrics) => Iterable<readonly [Labels<L>, HistogramSnapshot]>,
  ): void => {
    registry.registerMetric(new SnapshotHistogram<L>({ name: prefix + name, help, labelNames, registers: [] }, () => rows(snap())));
  };

  // ---- traffic ----
  counter('packets_received_total', 'MQTT packets received, by packet type.', ['type'],
    (m) => PACKET_NAMES_OF(m).map((type) => [{ type }, m.received[type].packets] as const));
  counter('packets_sent_total', 'MQTT packets sent, by packet type.', ['type'],
    (m) => PACKET_NAMES_OF(m).map((type) => [{ type }, m.sent[type].packets] as const));
  counter('bytes_received_total', 'Bytes of whole MQTT packets received, by packet type.', ['type'],
    (m) => PACKET_NAMES_OF(m).map((type) => [{ type }, m.received[type].bytes] as const));
  counter('bytes_sent_total', 'Bytes of MQTT packets sent, by packet type.', ['type'],
    (m) => PACKET_NAMES_OF(m).map((type) => [{ type }, m.sent[type].bytes] as const));
  counter('messages_published_total', 'Messages published: PUBLISH accepted from clients, the broker API and wills.', [],
    one((m) => m.messages.published));
  counter('messages_delivered_total', 'Message copies handed to sessions (sent at once or queued).', [], one((m) => m.messages.delivered));
  counter('messages_dropped_total', 'Deliveries dropped, by reason.', ['reason'],
    (m) => Object.entries(m.messages.dropped).map(([reason, n]) => [{ reason }, n] as const));

  // ---- connections and sessions ----
  counter('sockets_accepted_total', 'Streams (sockets) handed to the broker.', [], one((m) => m.sockets));
  counter('connections_total', 'CONNECTs accepted, by listener and protocol version.', ['listener', 'protocol'],
    (m) => m.clients.byListener.map((c) => [{ listener: c.listener, protocol: c.protocol }, c.total] as const));
  gauge('clients_connected', 'Connected clients, by listener and protocol version.', ['listener', 'protocol'],
    (m) => m.clients.byListener.map((c) => [{ listener: c.listener, protocol: c.protocol }, c.connected] as const));
  gauge('sessions', 'Sessions, by state (connected, or disconnected and persistent).', ['state'],
    (m) => [[{ state: 'connected' }, m.sessions.connected], [{ state: 'disconnected' }, m.sessions.disconnected]]);
  counter('sessions_expired_total', 'Sessions ended by their expiry interval.', [], one((m) => m.sessions.expired));
  gauge('subscriptions', 'Subscriptions of every session, shared ones included.', [], one((m) => m.subscriptions.total));
  gauge('shared_subscriptions', 'Members of shared subscription groups.', [], one((m) => m.subscriptions.shared));
  gauge('retained_messages', 'Retained messages (clients\', not $SYS).', [], one((m) => m.retained.messages));
  gauge('retained_bytes', 'Bytes of retained messages (payload, topic, properties).', [], one((m) => m.retained.bytes));
  gauge('inflight_messages', 'QoS 1/2 deliveries sent and not acknowledged yet.', [], one((m) => m.inflight));
  gauge('queued_messages', 'Deliveries waiting in session queues.', [], one((m) => m.queued.messages));
  gauge('queued_bytes', 'Bytes of the deliveries waiting in session queues.', [], one((m) => m.queued.bytes));
  gauge('queue_depth_max', 'Deliveries in the deepest session queue.', [], one((m) => m.queued.deepest));
  gauge('spilled_messages', 'Queue entries of offline persistent sessions kept in the store only.', [], one((m) => m.queued.spilled));
  gauge('uptime_seconds', 'Seconds since the broker started.', [], one((m) => m.uptime));

  // ---- latencies ----
  histogram('hook_duration_seconds', 'Time until user code answered (hooks, interceptors, authentication mechanisms), by kind.', ['hook'],
    (m) => Object.entries(m.hooks).map(([hook, h]) => [{ hook }, h] as const));
  histogram('store_commit_latency_seconds', 'Time from the first record of a store batch to its commit.', [],
    (m) => (m.store === undefined ? [] : [[{}, m.store.commit] as const]));
  histogram('store_write_duration_seconds', 'Duration of the store\'s write call, per batch.', [],
    (m) => (m.store === undefined ? [] : [[{}, m.store.write] as const]));
  counter('store_batches_total', 'Store batches committed.', [], (m) => (m.store === undefined ? [] : [[{}, m.store.batches]]));
  counter('store_records_total', 'Records in committed store batches.', [], (m) => (m.store === undefined ? [] : [[{}, m.store.records]]));
  counter('store_errors_total', 'Failed store writes.', [], (m) => (m.store === undefined ? [] : [[{}, m.store.errors]]));
  counter('store_unwritten_total', 'Store ops never written: messages delivered and acknowledged before their batch was written, with their deliveries.', [], (m) => (m.store === undefined ? [] : [[{}, m.store.unwritten]]));
  counter('store_early_acks_total', 'QoS 1 PUBACKs sent before their commit: every stored receiver had acknowledged the message.', [], (m) => (m.store === undefined ? [] : [[{}, m.store.earlyAcks]]));

  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix });

  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    registry,
  };
}
