/**
 * PUBLISH from a client (§3.3): resolve the topic alias, check what the broker allows,
 * acknowledge per QoS (QoS 2 exactly once: a PUBLISH repeated before PUBREL is not routed
 * again [MQTT-4.3.3-10]), keep or clear the retained message and route.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import {
  MqttError, PacketType, ProtocolError, ProtocolVersion, type PublishPacket, ReasonCode, topicLevels, topicNameProblem,
} from '../../protocol/index.js';
import type { Connection } from '../connection.js';
import { createMessage, type Message } from '../message.js';
import type { ClientInfo } from '../events.js';
import { aclAllowsPublish, type PublishChange, type PublishVerdict } from '../extensions.js';
import { replyAfterCommit } from '../durability.js';
import { isReservedTopic } from '../state.js';

export function handlePublish(c: Connection, p: PublishPacket): void | Promise<void> {
  const st = c.state;
  const v5 = c.version === ProtocolVersion.V5;
  if (v5 && !checkV5(c, p)) return;
  // Retain Available 0 for 3.1 / 3.1.1 publishers, which cannot be told: RETAIN is ignored, so
  // the message is neither stored nor delivered as retained, to any client [MQTT-3.2.2-14].
  else if (p.retain && !st.options.retainAvailable) p.retain = false;
  const session = c.session;
  if (session === undefined) return;
  if (st.pressing.size > 0) {
    // Flow control: a receiver is at its high-water mark; this PUBLISH waits for it, unrouted.
    const busy = st.pressingReceiver(p.topic);
    if (busy !== undefined) return c.holdBack(p, busy);
  }
  const qos = p.qos;
  if (qos === 2) {
    const id = p.packetId as number;
    if (session.awaitsPubrel(id)) {
      // [MQTT-4.3.3-10]: not routed again; the PUBREC goes behind the first one's commit.
      ack(c, p, ReasonCode.Success);
      return;
    }
    // [MQTT-3.3.4-7]: more unacknowledged QoS 2 PUBLISH than the Receive Maximum the broker sent
    // (5.0 only: 3.1.1 has no such limit, and its identifiers bound the set at 65,535).
    if (v5 && session.inboundQos2Count >= st.options.receiveMaximum) {
      throw new MqttError(ReasonCode.ReceiveMaximumExceeded, 'receive maximum exceeded [MQTT-3.3.4-7]');
    }
  }
  st.stats.messagesReceived++;
  if (isReservedTopic(p.topic)) {
    // $SYS/ belongs to the broker: client messages there are acknowledged and dropped.
    ack(c, p, v5 ? ReasonCode.NotAuthorized : ReasonCode.Success);
    return;
  }
  // maxTopicLength (UTF-8 bytes; 65535, the protocol's own bound [MQTT-4.7.3-3], by default):
  // 5.0 answers 0x90 Topic Name invalid (QoS 0: DISCONNECT 0x90), 3.1.1 cannot say why and closes.
  const maxLength = st.options.maxTopicLength;
  if (maxLength < 65535 && p.topic.length * 3 > maxLength && Buffer.byteLength(p.topic) > maxLength) {
    if (!v5 || qos === 0) throw new MqttError(ReasonCode.TopicNameInvalid, 'topic name too long');
    ack(c, p, ReasonCode.TopicNameInvalid, 'topic name too long');
    return;
  }
  const maxLevels = st.options.maxTopicLevels;
  // A topic of n characters has at most n + 1 levels: most topics skip the count entirely.
  if (maxLevels > 0 && p.topic.length >= maxLevels && topicLevels(p.topic) > maxLevels) {
    ack(c, p, v5 ? ReasonCode.TopicNameInvalid : ReasonCode.Success);
    return;
  }
  if (v5 && p.retain && st.retainQuotaExceeded(p)) {
    if (qos === 0) throw new MqttError(ReasonCode.QuotaExceeded, 'retained message quota exceeded');
    ack(c, p, ReasonCode.QuotaExceeded);
    return;
  }
  // A per-client ACL from the authenticate hook (e.g. a JWT's publish list).
  const acl = c.builtInfo?.acl;
  if (acl !== undefined && !aclAllowsPublish(acl, p.topic)) return ack(c, p, v5 ? ReasonCode.NotAuthorized : ReasonCode.Success);
  const authorize = st.ext.authorizePublish;
  if (authorize !== undefined) {
    const info = c.info as ClientInfo;
    const verdict = authorize({
      clientId: info.clientId, username: info.username, protocolVersion: info.protocolVersion, remoteAddress: info.remoteAddress,
      connection: info.connection, topic: p.topic, payload: p.payload, qos, retain: p.retain, properties: p.properties, will: false, client: info,
    });
    if (verdict instanceof Promise) return verdict.then((settled) => authorized(c, p, v5, settled));
    return authorized(c, p, v5, verdict);
  }
  return intercept(c, p, v5, undefined);
}

/** After authorization: on to the interceptors and routing, or refuse (5.0: the code on the acknowledgement; 3.1.1: acknowledged and dropped). */
function authorized(c: Connection, p: PublishPacket, v5: boolean, verdict: PublishVerdict): void | Promise<void> {
  if (c.phase === 'closed') return;
  if (typeof verdict !== 'number') return intercept(c, p, v5, verdict);
  if (verdict !== ReasonCode.Success) return ack(c, p, v5 ? verdict : ReasonCode.Success);
  return intercept(c, p, v5, undefined);
}

/**
 * The inbound interceptors (after authorization, before routing): the message they return is
 * routed; null drops it. With none, straight to routing.
 */
function intercept(c: Connection, p: PublishPacket, v5: boolean, change: PublishChange | undefined): void | Promise<void> {
  const run = c.state.ext.interceptPublish;
  if (run === undefined) return route(c, p, v5, change);
  const out = run({
    topic: change?.topic ?? p.topic, payload: change?.payload ?? p.payload, qos: change?.qos ?? p.qos,
    retain: change?.retain ?? p.retain, properties: change?.properties ?? p.properties,
  }, c.info);
  if (out instanceof Promise) return out.then((m) => (m === null ? dropped(c, p) : route(c, p, v5, m)));
  return out === null ? dropped(c, p) : route(c, p, v5, out);
}

/** An interceptor dropped the message: the publisher's flow completes as if it had been routed. */
function dropped(c: Connection, p: PublishPacket): void {
  const session = c.session;
  if (session === undefined || c.phase === 'closed') return;
  if (p.qos === 2) session.receivedQos2(p.packetId as number);
  ack(c, p, ReasonCode.Success);
}

function route(c: Connection, p: PublishPacket, v5: boolean, change: PublishChange | undefined): void {
  const st = c.state;
  const session = c.session;
  if (session === undefined || c.phase === 'closed') return;
  const qos = p.qos;
  const msg = createMessage(change === undefined ? {
    topic: p.topic, payload: p.payload, qos, retain: p.retain, properties: p.properties,
    senderId: session.clientId, now: st.now(),
  } : {
    // A hook or interceptor cannot retain what the broker does not store [MQTT-3.2.2-14].
    topic: change.topic ?? p.topic, payload: change.payload ?? p.payload, qos: change.qos ?? qos,
    retain: (change.retain ?? p.retain) && st.options.retainAvailable,
    properties: change.properties ?? p.properties, senderId: session.clientId, now: st.now(),
  });
  st.pressure = undefined;
  const receivers = st.publish(msg);
  // Flow control: a receiver's queue reached its high-water mark; this client waits for it.
  const pressure = st.pressure;
  if (pressure !== undefined) {
    st.pressure = undefined;
    c.holdFor(pressure);
  }
  if (qos === 2) session.receivedQos2(p.packetId as number);
  // A QoS 1 PUBACK may go before its commit once every persistent receiver acknowledged the
  // message (durability.ts, "delivered before durable"); not with a retained copy to store.
  if (qos > 0) ack(c, p, receivers === 0 && v5 ? ReasonCode.NoMatchingSubscribers : ReasonCode.Success, undefined, qos === 1 && !msg.retain ? msg : undefined);
  st.emitPublished(msg);
}

function ack(c: Connection, p: PublishPacket, code: number, reason?: string, delivered?: Message): void {
  if (p.qos === 0) return;
  // With a store, an acknowledgement waits for what its PUBLISH made durable (the message, its
  // queue and inflight entries at persistent receivers, a retained message, the QoS 2 receiver
  // state), and later acknowledgements of the connection wait behind it, in order; the
  // connection keeps reading meanwhile.
  const st = c.state;
  // In a cluster, the acknowledgement also waits until what this PUBLISH forwarded to other
  // nodes is safe in the cluster bus, so a node that dies after acknowledging loses nothing.
  const cluster = st.cluster;
  const forwarded = cluster !== undefined && cluster.pending ? cluster.forwarded() : undefined;
  if (st.durability === undefined && forwarded === undefined) return sendAck(c, p, code, reason);
  replyAfterCommit(st.durability, st.ackChains, c, () => sendAck(c, p, code, reason), storeFailed, forwarded, delivered);
}

const storeFailed = (): Error => new MqttError(ReasonCode.UnspecifiedError, 'the message could not be stored');

/** Sends PUBREL for a delivery the client acknowledged with PUBREC (after its new state is committed, with a store). */
export function sendPubrel(c: Connection, packetId: number, known: boolean): void {
  const durability = c.state.durability;
  // Without a store, at once (and no closure per PUBREC).
  if (durability === undefined) return writePubrel(c, packetId, known);
  // With a store, PUBREL waits until "PUBREC received" is durable: a restart then resends PUBREL,
  // never the PUBLISH the client may already have handed to its application [MQTT-4.3.3-5].
  replyAfterCommit(durability, c.state.ackChains, c, () => writePubrel(c, packetId, known), storeFailed);
}

function writePubrel(c: Connection, packetId: number, known: boolean): void {
  // [MQTT-4.3.3-4]: answer PUBREC with PUBREL; 5.0 reports an unknown identifier with 0x92.
  if (known) c.sendAck(PacketType.Pubrel, packetId);
  else c.send({ type: PacketType.Pubrel, packetId, reasonCode: ReasonCode.PacketIdentifierNotFound });
}

function sendAck(c: Connection, p: PublishPacket, code: number, reason: string | undefined): void {
  const type = p.qos === 1 ? PacketType.Puback : PacketType.Pubrec;
  if (code === ReasonCode.Success) return c.sendAck(type, p.packetId as number);
  // [MQTT-3.1.2-29]: a reason string only when the client did not ask for none.
  const reasonString = code >= 0x80 && c.problemInfo ? (reason ?? REASONS[code]) : undefined;
  c.send({ type, packetId: p.packetId as number, reasonCode: code, ...(reasonString ? { properties: { reasonString } } : {}) });
}

const REASONS: Readonly<Record<number, string>> = {
  [ReasonCode.NotAuthorized]: 'not authorized to publish to this topic',
  [ReasonCode.UnspecifiedError]: 'the publication could not be authorized',
  [ReasonCode.QuotaExceeded]: 'retained message quota exceeded',
  [ReasonCode.PayloadFormatInvalid]: 'payload is not valid UTF-8',
  [ReasonCode.TopicNameInvalid]: 'topic name has too many levels',
};

/**
 * Maps an inbound topic alias. The table's topics stay within maxTopicAliasBytes: a mapping
 * beyond it ends the connection with 0x97 Quota Exceeded (an implementation limit, §4.13).
 */
function setAlias(c: Connection, alias: number, topic: string): void {
  const aliases = (c.aliasesIn ??= new Map());
  const old = aliases.get(alias);
  if (old === topic) return;
  const bytes = c.aliasBytesIn - (old === undefined ? 0 : Buffer.byteLength(old)) + Buffer.byteLength(topic);
  const max = c.state.options.maxTopicAliasBytes;
  if (max > 0 && bytes > max) throw new MqttError(ReasonCode.QuotaExceeded, 'topic alias table exceeds its byte limit');
  aliases.set(alias, topic);
  c.aliasBytesIn = bytes;
}

/**
 * 5.0 checks: topic alias, Maximum QoS, Retain Available, Payload Format Indicator. Throws for
 * what ends the connection; returns false when the PUBLISH was refused with an acknowledgement.
 */
function checkV5(c: Connection, p: PublishPacket): boolean {
  const opts = c.state.options;
  const alias = p.properties?.topicAlias;
  if (alias !== undefined) {
    // [MQTT-3.3.2-8] [MQTT-3.3.2-9]: 0 and values above the Topic Alias Maximum are invalid.
    if (alias === 0 || alias > opts.topicAliasMaximum) throw new MqttError(ReasonCode.TopicAliasInvalid, 'topic alias out of range');
    if (p.topic.length > 0) setAlias(c, alias, p.topic);
    else {
      const topic = c.aliasesIn?.get(alias);
      if (topic === undefined) throw new ProtocolError('unknown topic alias');
      p.topic = topic;
    }
  }
  // [MQTT-3.2.2-11]: QoS above the Maximum QoS the broker announced.
  if (p.qos > opts.maximumQoS) throw new MqttError(ReasonCode.QoSNotSupported, 'QoS not supported');
  // [MQTT-3.2.2-14]: RETAIN when Retain Available is 0.
  if (p.retain && !opts.retainAvailable) throw new MqttError(ReasonCode.RetainNotSupported, 'retain not supported');
  // [MQTT-3.3.4-6]: a Subscription Identifier is for the server to send, never the client.
  if (p.properties?.subscriptionIdentifiers !== undefined) throw new ProtocolError('PUBLISH from a client with a subscription identifier [MQTT-3.3.4-6]');
  // [MQTT-3.3.2-13] [MQTT-3.3.2-14]: the Response Topic is a topic name: not empty, no wildcards.
  if (responseTopicInvalid(p.properties?.responseTopic)) throw new ProtocolError('invalid response topic [MQTT-3.3.2-14]');
  if (p.properties?.payloadFormatIndicator === true && !isUtf8(p.payload)) {
    // [MQTT-3.3.2-4]: a payload announced as UTF-8 must be UTF-8; refused with 0x99.
    if (p.qos === 0) throw new MqttError(ReasonCode.PayloadFormatInvalid, 'payload is not valid UTF-8');
    ack(c, p, ReasonCode.PayloadFormatInvalid);
    return false;
  }
  return true;
}

/** Whether a Response Topic is present and not a valid topic name (empty or with wildcards). */
export function responseTopicInvalid(topic: string | undefined): boolean {
  return topic !== undefined && topicNameProblem(topic) !== undefined;
}
