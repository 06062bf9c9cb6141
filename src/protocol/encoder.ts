/** encode(packet, version): each packet codec computes the exact length, then writes one Buffer. */
import type { Buffer } from 'node:buffer';
import { PacketType } from './constants.js';
import type { Packet } from './packets.js';
import { encodeAck } from './packets/ack.js';
import { encodeConnack } from './packets/connack.js';
import { encodeConnect } from './packets/connect.js';
import { encodeCoded, PINGREQ_BYTES, PINGRESP_BYTES } from './packets/disconnect.js';
import { encodePublish } from './packets/publish.js';
import { encodeSuback, encodeSubscribe } from './packets/subscribe.js';
import { encodeUnsuback, encodeUnsubscribe } from './packets/unsubscribe.js';

/**
 * Encodes `packet` for protocol level `version` (3, 4 or 5). The returned Buffer may be shared
 * (PINGREQ, PINGRESP, an empty DISCONNECT): never write into it.
 */
export function encode(packet: Packet, version: number): Buffer {
  switch (packet.type) {
    case PacketType.Publish: return encodePublish(packet, version);
    case PacketType.Connect: return encodeConnect(packet);
    case PacketType.Connack: return encodeConnack(packet, version);
    case PacketType.Puback: case PacketType.Pubrec: case PacketType.Pubrel: case PacketType.Pubcomp:
      return encodeAck(packet, version);
    case PacketType.Subscribe: return encodeSubscribe(packet, version);
    case PacketType.Suback: return encodeSuback(packet, version);
    case PacketType.Unsubscribe: return encodeUnsubscribe(packet, version);
    case PacketType.Unsuback: return encodeUnsuback(packet, version);
    case PacketType.Pingreq: return PINGREQ_BYTES;
    case PacketType.Pingresp: return PINGRESP_BYTES;
    case PacketType.Disconnect: case PacketType.Auth: return encodeCoded(packet, version);
  }
}
