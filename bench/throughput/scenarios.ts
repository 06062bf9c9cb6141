/** The workloads: who publishes where, who subscribes to what, the protocol and the flow-control bounds. */
import { type BenchQoS, type FlowScenarioName, isDurable, type Transport } from './common.js';

export interface FlowSpec {
  scenario: FlowScenarioName;
  qos: BenchQoS;
  /** MQTT protocol level of every client: 4 (3.1.1) or 5 (5.0). */
  protocol: 4 | 5;
  /** 5.0: Topic Alias Maximum the subscribers send in CONNECT (0 = property left out). */
  topicAliasMaximum: number;
  /** 5.0: Message Expiry Interval (seconds) on every PUBLISH; 0 = none. */
  messageExpiry: number;
  /** One topic filter per subscriber. */
  subscriberFilters: string[];
  /** The topics each publisher cycles through. */
  publisherTopics: string[][];
  /** QoS 1/2: unacknowledged messages allowed per publisher. */
  window: number;
  /** Most messages written to one socket in one write. */
  batch: number;
  /** Publishing pauses while more than this many deliveries are owed to the subscribers (unpaced runs). */
  maxOutstanding: number;
  /** Messages per second per publisher; 0 = as fast as the window, the sockets and `maxOutstanding` allow. */
  ratePerPublisher: number;
  /** Subscribers connect with Clean Session 0 (5.0: Clean Start 0 and a Session Expiry Interval): persistent sessions. */
  persistentSubscribers: boolean;
}

export const FANOUT_TOPICS = 128;
export const FANOUT_SUBSCRIBERS = 512;
export const FANOUT_PUBLISHERS = 10;
export const FANIN_PUBLISHERS = 2000;
export const P2P_PAIRS = 4;
/** Point-to-point window (QoS 1/2). */
export const P2P_WINDOW = 20;
/** Fixed-rate and headline runs: 10 publishers, 128 topics, 2000 subscribers. */
export const WIDE_PUBLISHERS = 10;
export const WIDE_TOPICS = 128;
export const WIDE_SUBSCRIBERS = 2000;
export const WIDE_WINDOW = 20;
export const RATE_PER_PUBLISHER = 100;
export const V5_TOPIC_ALIAS_MAXIMUM = 10;
export const V5_MESSAGE_EXPIRY = 60;
export const STORM_CLIENTS = 19_000;
export const STORM_WORKERS = 4;
export const MAX_OUTSTANDING = Number(process.env.BENCH_OUTSTANDING ?? 20_000);

/** Protocol of a scenario (5.0 scenarios end in 5 or 5-expiry). */
export function protocolOf(scenario: FlowScenarioName): 4 | 5 {
  return scenario.includes('5') ? 5 : 4;
}

/** The transport of a scenario: the suffix -tls, -ws or -wss, TCP otherwise. */
export function transportOf(scenario: FlowScenarioName): Transport {
  if (scenario.endsWith('-tls')) return 'tls';
  if (scenario.endsWith('-wss')) return 'wss';
  if (scenario.endsWith('-ws')) return 'ws';
  return 'tcp';
}

/** QoS levels a scenario is defined for (the transport variants: QoS 0 only). */
export function qosLevelsOf(scenario: FlowScenarioName): readonly BenchQoS[] {
  if (transportOf(scenario) !== 'tcp') return [0];
  if (isDurable(scenario)) return [1];
  return scenario === 'rate' ? [0, 1] : [0, 1, 2];
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Subscribers matching `topic`: filters here are exact topics or '#'. */
export function fanoutOf(spec: FlowSpec, topic: string): number {
  let n = 0;
  for (const f of spec.subscriberFilters) if (f === '#' || f === topic) n++;
  return n;
}

/** `subs` subscribers over `topics` topics (subscriber j on prefix/(j mod topics)); `pubs` publishers each cycling over every topic from 13·i. */
function wide(prefix: string, pubs: number, topics: number, subs: number): Pick<FlowSpec, 'subscriberFilters' | 'publisherTopics'> {
  return {
    subscriberFilters: range(subs).map((j) => `${prefix}/${j % topics}`),
    publisherTopics: range(pubs).map((i) => range(topics).map((t) => `${prefix}/${(t + 13 * i) % topics}`)),
  };
}

export function flowSpec(scenario: FlowScenarioName, qos: BenchQoS): FlowSpec {
  const protocol = protocolOf(scenario);
  const base = {
    scenario, qos, protocol,
    topicAliasMaximum: protocol === 5 ? V5_TOPIC_ALIAS_MAXIMUM : 0,
    messageExpiry: scenario.endsWith('-expiry') ? V5_MESSAGE_EXPIRY : 0,
    maxOutstanding: MAX_OUTSTANDING, ratePerPublisher: 0, persistentSubscribers: isDurable(scenario),
  };
  switch (scenario) {
    case 'fanout':
    case 'fanout-tls':
    case 'fanout-ws':
    case 'fanout-wss':
    case 'fanout5':
    case 'fanout5-expiry':
    case 'fanout-durable':
      // Subscriber j listens on bench/(j mod 128): every topic has 512/128 = 4 subscribers.
      return { ...base, ...wide('bench', FANOUT_PUBLISHERS, FANOUT_TOPICS, FANOUT_SUBSCRIBERS), window: 100, batch: 32 };
    case 'fanin':
      // Publisher i publishes on fanin/i; one subscriber on '#'. Publishers are served
      // round-robin, up to 16 messages (QoS 1/2: up to 5 unacknowledged) each per turn.
      return {
        ...base,
        subscriberFilters: ['#'],
        publisherTopics: range(FANIN_PUBLISHERS).map((i) => [`fanin/${i}`]),
        window: 5, batch: 16,
      };
    case 'p2p':
    case 'p2p-tls':
    case 'p2p-ws':
    case 'p2p-wss':
    case 'p2p5':
    case 'p2p5-expiry':
    case 'p2p-durable':
      // Publisher i -> p2p/i -> subscriber i.
      return {
        ...base,
        subscriberFilters: range(P2P_PAIRS).map((i) => `p2p/${i}`),
        publisherTopics: range(P2P_PAIRS).map((i) => [`p2p/${i}`]),
        window: P2P_WINDOW, batch: 32,
      };
    case 'rate':
      // 10 publishers × 100 msg/s over 128 topics; 2000 subscribers, 15 or 16 per topic.
      return {
        ...base, ...wide('rate', WIDE_PUBLISHERS, WIDE_TOPICS, WIDE_SUBSCRIBERS),
        window: WIDE_WINDOW, batch: 32, ratePerPublisher: RATE_PER_PUBLISHER,
      };
    case 'headline':
      // The same clients as 'rate', as fast as possible.
      return { ...base, ...wide('wide', WIDE_PUBLISHERS, WIDE_TOPICS, WIDE_SUBSCRIBERS), window: WIDE_WINDOW, batch: 32 };
  }
}
