/**
 * SUBSCRIBE / UNSUBSCRIBE and their acknowledgements (§3.8 to §3.11). Invariants: each request
 * holds its packet identifier until its SUBACK / UNSUBACK; the acknowledgement must carry one
 * code per filter, in order [MQTT-3.8.4-6] [MQTT-3.9.3-1], else it is a protocol error. The
 * filters the server granted (and those still waiting for SUBACK) are remembered until they are
 * unsubscribed, so that a client reconnecting to a server without its session subscribes again.
 */
import {
  PacketType, type Properties, ProtocolError, ProtocolVersion, type QoS, ReasonCode, type SubackPacket,
  type Subscription, topicFilterProblem, type UnsubackPacket,
} from '../protocol/index.js';
import { SubscribeError } from './errors.js';
import type { Link } from './link.js';
import type { PacketIds } from './packet-ids.js';

export interface SubscriptionRequest {
  topicFilter: string;
  qos: QoS;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

export interface SubscribeOptions {
  /** QoS for filters given as strings. Default 0. */
  qos?: QoS;
  /** 5.0 SUBSCRIBE properties (Subscription Identifier, User Properties). */
  properties?: Properties;
}

export interface SubackResult {
  /** One per filter, in order: granted QoS (0..2) or a failure code (0x80 or more). */
  reasonCodes: number[];
  properties?: Properties;
}

interface Request {
  count: number;
  filters: string[];
  unsubscribe: boolean;
  resolve: (result: SubackResult) => void;
  reject: (error: Error) => void;
}

interface Active {
  subscription: Subscription;
  properties: Properties | undefined;
}

export class Subscriptions {
  readonly #ids: PacketIds;
  readonly #requests = new Map<number, Request>();
  /** Filter → what was last asked for it. */
  readonly #active = new Map<string, Active>();

  constructor(ids: PacketIds) {
    this.#ids = ids;
  }

  subscribe(link: Link, filter: string | string[] | SubscriptionRequest[], options: SubscribeOptions): Promise<SubackResult> {
    const list = typeof filter === 'string' ? [filter] : filter;
    const subscriptions: Subscription[] = list.map((f) => (typeof f === 'string' ? { topicFilter: f, qos: options.qos ?? 0 } : { ...f }));
    for (const s of subscriptions) {
      const problem = topicFilterProblem(s.topicFilter);
      if (problem !== undefined) return Promise.reject(new SubscribeError(ReasonCode.TopicFilterInvalid, problem));
    }
    // [MQTT-3.8.3-3]: at least one topic filter.
    if (subscriptions.length === 0) return Promise.reject(new SubscribeError(ReasonCode.TopicFilterInvalid, 'no topic filter'));
    for (const subscription of subscriptions) {
      this.#active.delete(subscription.topicFilter);
      this.#active.set(subscription.topicFilter, { subscription, properties: options.properties });
    }
    return new Promise((resolve, reject) => {
      const packetId = this.#ids.take();
      const filters = subscriptions.map((x) => x.topicFilter);
      this.#requests.set(packetId, { count: subscriptions.length, filters, unsubscribe: false, resolve, reject });
      const packet = { type: PacketType.Subscribe, packetId, subscriptions } as const;
      link.send(options.properties !== undefined && link.version === ProtocolVersion.V5 ? { ...packet, properties: options.properties } : packet);
    });
  }

  unsubscribe(link: Link, filters: string | string[], options: { properties?: Properties }): Promise<SubackResult> {
    const topicFilters = typeof filters === 'string' ? [filters] : filters;
    for (const f of topicFilters) {
      const problem = topicFilterProblem(f);
      if (problem !== undefined) return Promise.reject(new SubscribeError(ReasonCode.TopicFilterInvalid, problem));
    }
    if (topicFilters.length === 0) return Promise.reject(new SubscribeError(ReasonCode.TopicFilterInvalid, 'no topic filter'));
    return new Promise((resolve, reject) => {
      const packetId = this.#ids.take();
      this.#requests.set(packetId, { count: topicFilters.length, filters: topicFilters, unsubscribe: true, resolve, reject });
      const packet = { type: PacketType.Unsubscribe, packetId, topicFilters } as const;
      link.send(options.properties !== undefined && link.version === ProtocolVersion.V5 ? { ...packet, properties: options.properties } : packet);
    });
  }

  suback(p: SubackPacket): void {
    const request = this.#take(p.packetId, false);
    if (request === undefined) return;
    if (p.reasonCodes.length !== request.count) throw new ProtocolError('SUBACK does not answer every topic filter [MQTT-3.8.4-6]');
    p.reasonCodes.forEach((code, i) => {
      if (code >= 0x80) this.#active.delete(request.filters[i] as string);
    });
    request.resolve(result(p.reasonCodes, p.properties));
  }

  unsuback(p: UnsubackPacket): void {
    const request = this.#take(p.packetId, true);
    if (request === undefined) return;
    // 3.1.1 UNSUBACK has no codes: each filter counts as removed.
    const codes = p.reasonCodes ?? new Array<number>(request.count).fill(ReasonCode.Success);
    if (codes.length !== request.count) throw new ProtocolError('UNSUBACK does not answer every topic filter [MQTT-3.11.3-1]');
    for (const f of request.filters) this.#active.delete(f);
    request.resolve(result(codes, p.properties));
  }

  /** The filters subscribed (or being subscribed) now. */
  get filters(): string[] {
    return [...this.#active.keys()];
  }

  /**
   * Subscribes again to every remembered filter (the server started a new session), one
   * SUBSCRIBE per set of properties; resolves with the SUBACKs.
   */
  resubscribe(link: Link): Promise<SubackResult[]> {
    const groups = new Map<Properties | undefined, SubscriptionRequest[]>();
    for (const { subscription, properties } of this.#active.values()) {
      let group = groups.get(properties);
      if (group === undefined) groups.set(properties, (group = []));
      group.push(subscription as SubscriptionRequest);
    }
    const sent: Promise<SubackResult>[] = [];
    for (const [properties, group] of groups) sent.push(this.subscribe(link, group, properties === undefined ? {} : { properties }));
    return Promise.all(sent);
  }

  /** The link is gone: every request fails with `error`. */
  detach(error: Error): void {
    for (const [id, r] of this.#requests) {
      this.#ids.release(id);
      r.reject(error);
    }
    this.#requests.clear();
  }

  #take(packetId: number, unsubscribe: boolean): Request | undefined {
    const request = this.#requests.get(packetId);
    if (request === undefined || request.unsubscribe !== unsubscribe) return undefined;
    this.#requests.delete(packetId);
    this.#ids.release(packetId);
    return request;
  }
}

function result(reasonCodes: number[], properties: Properties | undefined): SubackResult {
  return properties === undefined ? { reasonCodes } : { reasonCodes, properties };
}
