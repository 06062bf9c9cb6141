/**
 * Typed errors carrying an MQTT reason code. The broker's dispatcher turns any of them
 * into a CONNACK or DISCONNECT with that code (5.0) or a closed connection (3.1.1).
 */
import { ReasonCode } from './reason-codes.js';

export class MqttError extends Error {
  readonly reasonCode: number;
  constructor(reasonCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reasonCode = reasonCode;
    this.name = new.target.name;
  }
}

/** 0x81: the bytes do not form a packet the specification allows. */
export class MalformedPacketError extends MqttError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ReasonCode.MalformedPacket, message, options);
  }
}

/** 0x82: a well-formed packet that breaks a protocol rule. */
export class ProtocolError extends MqttError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ReasonCode.ProtocolError, message, options);
  }
}

/** 0x95: the packet exceeds the maximum packet size. */
export class PacketTooLargeError extends MqttError {
  readonly size: number;
  constructor(size: number, limit: number) {
    super(ReasonCode.PacketTooLarge, `packet of ${size} bytes exceeds the limit of ${limit}`);
    this.size = size;
  }
}

/** 0x84: CONNECT names a protocol or level this codec does not speak [MQTT-3.1.2-2]. */
export class UnsupportedProtocolVersionError extends MqttError {
  constructor(message: string) {
    super(ReasonCode.UnsupportedProtocolVersion, message);
  }
}

/** 0x8F / 0x90: a topic filter or name that breaks §4.7. */
export class TopicFilterInvalidError extends MqttError {
  constructor(message: string) {
    super(ReasonCode.TopicFilterInvalid, message);
  }
}
export class TopicNameInvalidError extends MqttError {
  constructor(message: string) {
    super(ReasonCode.TopicNameInvalid, message);
  }
}
