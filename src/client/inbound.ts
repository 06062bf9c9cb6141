/**
 * PUBLISH from the server (§4.3, §3.3.2.3.4). Invariants:
 * - a QoS 2 message is delivered to the application once: its identifier is kept from the first
 *   PUBLISH until PUBREL, and a PUBLISH with a kept identifier is acknowledged, not delivered
 *   again [MQTT-4.3.3-9] [MQTT-4.3.3-10];
 * - the acknowledgement is written after delivery (QoS 1 PUBACK [MQTT-4.3.2-4]; QoS 2 PUBREC);
 * - 5.0 topic aliases live per connection and only within the Topic Alias Maximum the client
 *   advertised; 0, a value above it, or an unknown alias with an empty topic closes the
 *   connection with 0x94 [MQTT-3.3.2-8] [MQTT-3.3.2-11];
 * - the server may not have more unacknowledged QoS 2 messages (PUBREC sent, PUBREL not yet
 *   received) than the Receive Maximum the client advertised: one more closes the connection
 *   with 0x93 [MQTT-3.3.4-9]. (QoS 1 is acknowledged as it is delivered, so it never counts.)
 */
import {
  MqttError, PacketType, type Properties, type PublishPacket, ReasonCode, type PubrelPacket,
} from '../protocol/index.js';
import type { Link } from './link.js';
import type { ReceivedMessage } from './messages.js';
import type { InflightStore } from './store.js';

export class TopicAliasInvalidError extends MqttError {
  constructor(message: string) {
    super(ReasonCode.TopicAliasInvalid, message);
  }
}

export class ReceiveMaximumExceededError extends MqttError {
  constructor(max: number) {
    super(ReasonCode.ReceiveMaximumExceeded, `more than Receive Maximum ${max} QoS 2 messages unacknowledged [MQTT-3.3.4-9]`);
  }
}

export class Inbound {
  readonly #store: InflightStore;
  readonly #deliver: (message: ReceivedMessage) => void;
  #aliasMaximum = 0;
  #receiveMaximum = 0xffff;
  /** QoS 2 identifiers held (PUBREC sent, waiting for PUBREL). */
  #held = 0;
  #aliases: Map<number, string> | undefined;

  constructor(store: InflightStore, deliver: (message: ReceivedMessage) => void) {
    this.#store = store;
    this.#deliver = deliver;
  }

  /** A new connection: aliases start empty [MQTT-3.3.2-7]. */
  reset(aliasMaximum: number, receiveMaximum = 0xffff): void {
    this.#aliasMaximum = aliasMaximum;
    this.#receiveMaximum = receiveMaximum;
    this.#aliases = undefined;
  }

  /** The store was cleared (a new session): nothing is held. */
  cleared(): void {
    this.#held = 0;
  }

  publish(p: PublishPacket, link: Link): void {
    const props = p.properties;
    const topic = props?.topicAlias === undefined ? p.topic : this.#resolve(p.topic, props);
    const id = p.packetId as number;
    if (p.qos === 2) {
      if (!this.#store.hasIncoming(id)) {
        if (this.#held >= this.#receiveMaximum) throw new ReceiveMaximumExceededError(this.#receiveMaximum);
        this.#held++;
        this.#store.addIncoming(id);
        this.#deliver(message(p, topic));
      }
      link.send({ type: PacketType.Pubrec, packetId: id });
      return;
    }
    this.#deliver(message(p, topic));
    if (p.qos === 1) link.send({ type: PacketType.Puback, packetId: id });
  }

  /** PUBREL: the identifier may be reused; PUBCOMP either way (5.0: 0x92 if it was not held). */
  pubrel(p: PubrelPacket, link: Link): void {
    const held = this.#store.hasIncoming(p.packetId);
    if (held) {
      this.#store.deleteIncoming(p.packetId);
      if (this.#held > 0) this.#held--;
    }
    link.send({ type: PacketType.Pubcomp, packetId: p.packetId, reasonCode: held ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound });
  }

  #resolve(topic: string, props: Properties): string {
    const alias = props.topicAlias as number;
    if (alias === 0 || alias > this.#aliasMaximum) {
      throw new TopicAliasInvalidError(`topic alias ${alias} outside 1..${this.#aliasMaximum} [MQTT-3.3.2-8] [MQTT-3.3.2-11]`);
    }
    if (topic.length > 0) {
      (this.#aliases ??= new Map()).set(alias, topic);
      return topic;
    }
    const known = this.#aliases?.get(alias);
    if (known === undefined) throw new TopicAliasInvalidError(`unknown topic alias ${alias}`);
    return known;
  }
}

function message(p: PublishPacket, topic: string): ReceivedMessage {
  let props = p.properties;
  if (props?.topicAlias !== undefined) {
    const { topicAlias: _alias, ...rest } = props;
    props = Object.keys(rest).length === 0 ? undefined : rest;
  }
  return { topic, payload: p.payload, qos: p.qos, retain: p.retain, dup: p.dup, properties: props };
}
