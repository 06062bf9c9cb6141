/** The workloads: who publishes where, who subscribes to what, and the flow-control bounds. */
import type { ScenarioName } from './common.js';

export interface FlowSpec {
  scenario: Exclude<ScenarioName, 'storm'>;
  qos: 0 | 1;
  /** One topic filter per subscriber. */
  subscriberFilters: string[];
  /** The topics each publisher cycles through. */
  publisherTopics: string[][];
  /** Subscribers reached by each message. */
  fanout: number;
  /** QoS 1: unacknowledged messages allowed per publisher. */
  window: number;
  /** Most messages written to one socket in one write. */
  batch: number;
  /** Publishing pauses while more than this many deliveries are owed to the subscribers. */
  maxOutstanding: number;
}

export const FANOUT_TOPICS = 128;
export const FANOUT_SUBSCRIBERS = 512;
export const FANOUT_PUBLISHERS = 10;
export const FANIN_PUBLISHERS = 2000;
export const P2P_PAIRS = 4;
export const STORM_CLIENTS = 19_000;
export const STORM_WORKERS = 4;
export const MAX_OUTSTANDING = Number(process.env.BENCH_OUTSTANDING ?? 20_000);

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export function flowSpec(scenario: FlowSpec['scenario'], qos: 0 | 1): FlowSpec {
  switch (scenario) {
    case 'fanout':
      // Subscriber j listens on bench/(j mod 128): every topic has 512/128 = 4 subscribers.
      // Publisher i cycles over all 128 topics, starting at topic 13·i.
      return {
        scenario, qos,
        subscriberFilters: range(FANOUT_SUBSCRIBERS).map((j) => `bench/${j % FANOUT_TOPICS}`),
        publisherTopics: range(FANOUT_PUBLISHERS).map((i) =>
          range(FANOUT_TOPICS).map((t) => `bench/${(t + 13 * i) % FANOUT_TOPICS}`)),
        fanout: FANOUT_SUBSCRIBERS / FANOUT_TOPICS,
        window: 100, batch: 32, maxOutstanding: MAX_OUTSTANDING,
      };
    case 'fanin':
      // Publisher i publishes on fanin/i; one subscriber on '#'. Publishers are served
      // round-robin, up to 16 messages (QoS 1: up to 5 unacknowledged) each per turn.
      return {
        scenario, qos,
        subscriberFilters: ['#'],
        publisherTopics: range(FANIN_PUBLISHERS).map((i) => [`fanin/${i}`]),
        fanout: 1, window: 5, batch: 16, maxOutstanding: MAX_OUTSTANDING,
      };
    case 'p2p':
      // Publisher i -> p2p/i -> subscriber i.
      return {
        scenario, qos,
        subscriberFilters: range(P2P_PAIRS).map((i) => `p2p/${i}`),
        publisherTopics: range(P2P_PAIRS).map((i) => [`p2p/${i}`]),
        fanout: 1, window: 100, batch: 32, maxOutstanding: MAX_OUTSTANDING,
      };
  }
}
