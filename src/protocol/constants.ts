/**
 * Packet types, protocol levels and fixed-header rules shared by every codec file.
 */

export const PacketType = {
  Connect: 1,
  Connack: 2,
  Publish: 3,
  Puback: 4,
  Pubrec: 5,
  Pubrel: 6,
  Pubcomp: 7,
  Subscribe: 8,
  Suback: 9,
  Unsubscribe: 10,
  Unsuback: 11,
  Pingreq: 12,
  Pingresp: 13,
  Disconnect: 14,
  Auth: 15,
} as const;
export type PacketTypeValue = (typeof PacketType)[keyof typeof PacketType];

export const PacketTypeName: Readonly<Record<number, string>> = {
  1: 'connect', 2: 'connack', 3: 'publish', 4: 'puback', 5: 'pubrec', 6: 'pubrel', 7: 'pubcomp',
  8: 'subscribe', 9: 'suback', 10: 'unsubscribe', 11: 'unsuback', 12: 'pingreq', 13: 'pingresp',
  14: 'disconnect', 15: 'auth',
};

/** Protocol level byte of CONNECT: 3 = MQTT 3.1 ("MQIsdp"), 4 = 3.1.1, 5 = 5.0. */
export const ProtocolVersion = { V31: 3, V311: 4, V5: 5 } as const;
export type ProtocolVersionValue = (typeof ProtocolVersion)[keyof typeof ProtocolVersion];

export type QoS = 0 | 1 | 2;

/**
 * Required low nibble of the fixed header for every type but PUBLISH
 * [MQTT-2.2.2-1] [MQTT-2.2.2-2]; PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1].
 */
export const RequiredFlags: Readonly<Record<number, number>> = {
  1: 0, 2: 0, 4: 0, 5: 0, 6: 2, 7: 0, 8: 2, 9: 0, 10: 2, 11: 0, 12: 0, 13: 0, 14: 0, 15: 0,
};

/** Largest value a Variable Byte Integer can hold (4 bytes) [MQTT-1.5.5-1]. */
export const MaxVariableByteInteger = 268_435_455;
/** Largest packet the wire format allows: 1 type byte + 4 length bytes + 268,435,455. */
export const MaxPacketSize = 268_435_460;
