/**
 * The client's outgoing PUBLISH flows (§4.3). Invariants:
 * - a QoS 1/2 PUBLISH holds its packet identifier from the moment it is written until its flow
 *   completes (PUBACK; PUBCOMP; a PUBREC of 0x80 or more) and is counted against the server's
 *   Receive Maximum for exactly that time [MQTT-3.3.4-7] [MQTT-4.9.0-2]; past the quota, publishes
 *   wait in the order they were made, and are written as acknowledgements free the quota;
 * - the packet is encoded once, when `publish` is called; its identifier is stamped in place
 *   (with outbound topic aliases, the alias is chosen when the packet is written, so that the
 *   PUBLISH that tells the server an alias always goes out before those that use it);
 * - the store holds every flow in progress; a flow outlives its connection when the client
 *   reconnects: on a resumed session it is sent again with DUP set, or PUBREL if it was past
 *   PUBREC [MQTT-4.4.0-1] [MQTT-3.3.1-1]; on a new session it starts over. Its promise settles
 *   when the flow completes, on whichever connection.
 */
import type { Buffer } from 'node:buffer';
import {
  type AckPacket, encode, type PacketType, type Properties, ProtocolVersion, type PublishPacket,
  publishIdOffset, ReasonCode,
} from '../protocol/index.js';
import { PacketType as T } from '../protocol/index.js';
import { Deque } from '../session/deque.js';
import type { OutboundAliases } from './aliases.js';
import { PublishError } from './errors.js';
import type { Link } from './link.js';
import type { PacketIds } from './packet-ids.js';
import type { InflightStore } from './store.js';
import { RotatingMap } from '../session/rotating.js';

export interface PublishResult {
  /** The identifier the PUBLISH used (QoS 1/2). */
  packetId?: number;
  /** The PUBACK / PUBCOMP reason code (0x00, or 0x10 No Matching Subscribers); 0 for QoS 0 and 3.1.1. */
  reasonCode: number;
  properties?: Properties;
}

interface Flow {
  /** As sent, with its packet identifier and without a topic alias. */
  packet: PublishPacket;
  /** The encoding without an alias (the identifier stamped in place). */
  bytes: Buffer;
  resolve: (result: PublishResult) => void;
  reject: (error: Error) => void;
}

/** The server's limits from CONNACK that apply to what the client sends. */
export interface ServerLimits {
  receiveMaximum: number;
  maximumPacketSize: number;
  maximumQoS: number;
  retainAvailable: boolean;
  topicAliasMaximum: number;
}

/** Room an alias can add to a PUBLISH: the property (3 bytes) and longer length fields. */
const ALIAS_ROOM = 8;

function noop(): void {}

export class Outbound {
  readonly #ids: PacketIds;
  readonly #store: InflightStore;
  readonly #flows = new RotatingMap<number, Flow>();
  readonly #waiting = new Deque<Flow>();
  #link: Link | undefined;
  #quota = 0xffff;
  #limits: ServerLimits | undefined;
  #aliases: OutboundAliases | undefined;

  constructor(ids: PacketIds, store: InflightStore) {
    this.#ids = ids;
    this.#store = store;
  }

  /** QoS 1/2 flows in progress. */
  get inflight(): number {
    return this.#flows.size;
  }

  /** Publishes waiting for the Receive Maximum quota. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /**
   * Takes over the flows a durable store kept from an earlier process: they are resent on the
   * next connection like any other; nobody waits for their outcome.
   */
  restore(version: number): void {
    for (const [id, entry] of this.#store.outgoing()) {
      if (this.#flows.has(id)) continue;
      this.#ids.reserve(id);
      this.#flows.set(id, { packet: entry.packet, bytes: encode(entry.packet, version), resolve: noop, reject: noop });
    }
  }

  /**
   * A CONNACK accepted `link`; `limits` are the server's. Flows kept from an earlier connection
   * go first, in the order they were first sent [MQTT-4.6.0-1]: on a resumed session (`resumed`)
   * as they stood, otherwise as new messages.
   */
  attach(link: Link, limits: ServerLimits, resumed: boolean, aliases?: OutboundAliases): void {
    this.#link = link;
    this.#limits = limits;
    this.#quota = limits.receiveMaximum;
    this.#aliases = aliases;
    // A snapshot: completing a flow here may start a waiting one, which must not be sent twice.
    for (const [id, flow] of [...this.#flows]) {
      const phase = this.#store.getOutgoing(id)?.phase ?? 'publish';
      if (phase === 'pubrel') {
        if (resumed) link.send({ type: T.Pubrel, packetId: id });
        // The server acknowledged the message with PUBREC and then lost the session: it is the server's.
        else this.#finish(id, flow, { type: T.Pubcomp, packetId: id });
        continue;
      }
      if (resumed) {
        // [MQTT-4.4.0-1] [MQTT-3.3.1-1]: the same packet identifier, DUP set.
        link.write(encode({ ...flow.packet, dup: true }, link.version));
      } else {
        this.#store.putOutgoing(id, { packet: flow.packet, phase: 'publish' });
        link.write(flow.bytes);
      }
    }
    this.#drain();
  }

  /**
   * The link is gone. `keep`: flows and waiting publishes stay for the next connection;
   * otherwise every one fails with `error`, but the store keeps the flows: the session outlives
   * the client, and a durable store hands them to the next client process (a clean start clears them).
   */
  detach(error: Error, keep = false): void {
    this.#link = undefined;
    this.#aliases = undefined;
    if (keep) return;
    for (const [id, flow] of this.#flows) {
      this.#ids.release(id);
      flow.reject(error);
    }
    this.#flows.clear();
    for (let f = this.#waiting.shift(); f !== undefined; f = this.#waiting.shift()) f.reject(error);
  }

  publish(packet: PublishPacket, resolve: Flow['resolve'], reject: Flow['reject']): void {
    const link = this.#link;
    const limits = this.#limits;
    if (link === undefined || limits === undefined) {
      reject(new PublishError(ReasonCode.UnspecifiedError, 'not connected'));
      return;
    }
    // [MQTT-3.2.2-11]: no QoS above the server's Maximum QoS; [MQTT-3.2.2-14]: no retain where unavailable.
    if (packet.qos > limits.maximumQoS) {
      reject(new PublishError(ReasonCode.QoSNotSupported, `QoS ${packet.qos} exceeds the server's maximum QoS ${limits.maximumQoS}`));
      return;
    }
    if (packet.retain && !limits.retainAvailable) {
      reject(new PublishError(ReasonCode.RetainNotSupported, 'the server does not support retained messages'));
      return;
    }
    const bytes = encode(packet, link.version);
    // [MQTT-3.1.2-24]: nothing larger than the server's Maximum Packet Size.
    if (bytes.length > limits.maximumPacketSize) {
      reject(new PublishError(ReasonCode.PacketTooLarge, `a PUBLISH of ${bytes.length} bytes exceeds the server's maximum packet size`));
      return;
    }
    if (packet.qos === 0) {
      link.write(this.#wire(packet, bytes, link), (err) => (err ? reject(err) : resolve({ reasonCode: ReasonCode.Success })));
      return;
    }
    const flow: Flow = { packet, bytes, resolve, reject };
    if (this.#flows.size < this.#quota && this.#waiting.length === 0) this.#start(flow, link);
    else this.#waiting.push(flow);
  }

  /** PUBACK: completes a QoS 1 flow. Unknown identifiers are ignored. */
  puback(ack: AckPacket<typeof PacketType.Puback>): void {
    const flow = this.#flows.get(ack.packetId);
    if (flow === undefined || flow.packet.qos !== 1) return;
    this.#finish(ack.packetId, flow, ack);
  }

  /** PUBREC: answers PUBREL [MQTT-4.3.3-4], or ends the flow on a failure code (5.0). */
  pubrec(ack: AckPacket<typeof PacketType.Pubrec>): void {
    const link = this.#link;
    const id = ack.packetId;
    const flow = this.#flows.get(id);
    if (flow === undefined || flow.packet.qos !== 2) {
      // 5.0 §4.3.3: a PUBREC for an identifier we do not hold gets PUBREL 0x92.
      link?.send({ type: T.Pubrel, packetId: id, reasonCode: ReasonCode.PacketIdentifierNotFound });
      return;
    }
    if ((ack.reasonCode ?? 0) >= 0x80) {
      this.#finish(id, flow, ack);
      return;
    }
    this.#store.putOutgoing(id, { packet: flow.packet, phase: 'pubrel' });
    link?.send({ type: T.Pubrel, packetId: id });
  }

  /** PUBCOMP: completes a QoS 2 flow whose PUBREL was sent. */
  pubcomp(ack: AckPacket<typeof PacketType.Pubcomp>): void {
    const flow = this.#flows.get(ack.packetId);
    if (flow === undefined || this.#store.getOutgoing(ack.packetId)?.phase !== 'pubrel') return;
    this.#finish(ack.packetId, flow, ack);
  }

  /** The bytes to write for `packet`: with a topic alias when aliases are on and there is room. */
  #wire(packet: PublishPacket, bytes: Buffer, link: Link): Buffer {
    const aliases = this.#aliases;
    if (aliases === undefined || packet.properties?.topicAlias !== undefined) return bytes;
    if (bytes.length + ALIAS_ROOM > (this.#limits as ServerLimits).maximumPacketSize) return bytes;
    const alias = aliases.use(packet.topic);
    const properties: Properties = { ...packet.properties, topicAlias: Math.abs(alias) };
    return encode({ ...packet, topic: alias > 0 ? '' : packet.topic, properties }, link.version);
  }

  #start(flow: Flow, link: Link): void {
    const id = this.#ids.take();
    flow.packet.packetId = id;
    flow.bytes.writeUInt16BE(id, publishIdOffset(flow.bytes));
    this.#flows.set(id, flow);
    this.#store.putOutgoing(id, { packet: flow.packet, phase: 'publish' });
    link.write(this.#wire(flow.packet, flow.bytes, link));
  }

  #finish(id: number, flow: Flow, ack: AckPacket<number>): void {
    this.#flows.delete(id);
    this.#store.deleteOutgoing(id);
    this.#ids.release(id);
    const reasonCode = ack.reasonCode ?? 0;
    if (reasonCode >= 0x80) {
      flow.reject(new PublishError(reasonCode, `PUBLISH refused with reason code 0x${reasonCode.toString(16)}`, ack.properties));
    } else {
      const result: PublishResult = { packetId: id, reasonCode };
      if (ack.properties !== undefined) result.properties = ack.properties;
      flow.resolve(result);
    }
    this.#drain();
  }

  /** Writes waiting publishes while the quota allows, in order. */
  #drain(): void {
    const link = this.#link;
    if (link === undefined) return;
    while (this.#waiting.length > 0 && this.#flows.size < this.#quota && link.open) {
      this.#start(this.#waiting.shift() as Flow, link);
    }
  }
}

/** The version-specific default of each server limit when CONNACK does not state it. */
export function serverLimits(version: number, props: Properties | undefined): ServerLimits {
  const v5 = version === ProtocolVersion.V5;
  return {
    receiveMaximum: (v5 ? props?.receiveMaximum : undefined) ?? 0xffff,
    maximumPacketSize: (v5 ? props?.maximumPacketSize : undefined) ?? Number.MAX_SAFE_INTEGER,
    maximumQoS: (v5 ? props?.maximumQoS : undefined) ?? 2,
    retainAvailable: (v5 ? props?.retainAvailable : undefined) ?? true,
    topicAliasMaximum: (v5 ? props?.topicAliasMaximum : undefined) ?? 0,
  };
}
