/**
 * The packet model: one interface per control packet, discriminated by `type`. MQTT 5.0
 * fields (reason codes, properties) are part of every packet; for 3.1 / 3.1.1 they are
 * absent on decode and ignored on encode.
 */
import type { Buffer } from 'node:buffer';
import type { PacketType, ProtocolVersionValue, QoS } from './constants.js';
import type { Properties } from './properties.js';

export interface WillMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
}

export interface ConnectPacket {
  type: typeof PacketType.Connect;
  protocolVersion: ProtocolVersionValue;
  /** "MQTT" for 3.1.1 and 5.0, "MQIsdp" for 3.1. */
  protocolName: string;
  clientId: string;
  /** Clean Session (3.1 / 3.1.1) or Clean Start (5.0). */
  clean: boolean;
  keepalive: number;
  username?: string;
  password?: Buffer;
  will?: WillMessage;
  properties?: Properties;
}

export interface ConnackPacket {
  type: typeof PacketType.Connack;
  sessionPresent: boolean;
  /** A 5.0 reason code; the 3.1.1 encoder maps it to a return code. */
  reasonCode: number;
  properties?: Properties;
}

export interface PublishPacket {
  type: typeof PacketType.Publish;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present when qos > 0. */
  packetId?: number;
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL and PUBCOMP share one layout. */
export interface AckPacket<T extends number> {
  type: T;
  packetId: number;
  reasonCode?: number;
  properties?: Properties;
}
export type PubackPacket = AckPacket<typeof PacketType.Puback>;
export type PubrecPacket = AckPacket<typeof PacketType.Pubrec>;
export type PubrelPacket = AckPacket<typeof PacketType.Pubrel>;
export type PubcompPacket = AckPacket<typeof PacketType.Pubcomp>;

export interface Subscription {
  topicFilter: string;
  qos: QoS;
  /** 5.0 subscription options; defaults false / false / 0. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

export interface SubscribePacket {
  type: typeof PacketType.Subscribe;
  packetId: number;
  subscriptions: Subscription[];
  properties?: Properties;
}

export interface SubackPacket {
  type: typeof PacketType.Suback;
  packetId: number;
  /** Granted QoS or a failure / 5.0 reason code, one per filter. */
  reasonCodes: number[];
  properties?: Properties;
}

export interface UnsubscribePacket {
  type: typeof PacketType.Unsubscribe;
  packetId: number;
  topicFilters: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  type: typeof PacketType.Unsuback;
  packetId: number;
  /** 5.0 only: one per filter. */
  reasonCodes?: number[];
  properties?: Properties;
}

export interface PingreqPacket { type: typeof PacketType.Pingreq }
export interface PingrespPacket { type: typeof PacketType.Pingresp }

export interface DisconnectPacket {
  type: typeof PacketType.Disconnect;
  reasonCode?: number;
  properties?: Properties;
}

export interface AuthPacket {
  type: typeof PacketType.Auth;
  reasonCode?: number;
  properties?: Properties;
}

export type Packet =
  | ConnectPacket | ConnackPacket | PublishPacket | PubackPacket | PubrecPacket | PubrelPacket
  | PubcompPacket | SubscribePacket | SubackPacket | UnsubscribePacket | UnsubackPacket
  | PingreqPacket | PingrespPacket | DisconnectPacket | AuthPacket;
