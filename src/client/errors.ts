/**
 * The client's typed errors. Each is an `MqttError` carrying the reason code that explains it:
 * the server's code where the server gave one, otherwise the nearest code of MQTT 5.0 §2.4.
 */
import { MqttError, ReasonCode } from '../protocol/index.js';
import type { ConnackPacket, Properties } from '../protocol/index.js';

/** The server refused the connection: `reasonCode` is the CONNACK's (3.1.1 return codes mapped to 5.0). */
export class ConnackError extends MqttError {
  readonly connack: ConnackPacket;
  constructor(connack: ConnackPacket) {
    const reason = connack.properties?.reasonString;
    super(connack.reasonCode, `connection refused with reason code 0x${connack.reasonCode.toString(16)}${reason === undefined ? '' : `: ${reason}`}`);
    this.connack = connack;
  }
}

/** No CONNACK came within `connectTimeout`. */
export class ConnectTimeoutError extends MqttError {
  constructor(ms: number) {
    super(ReasonCode.UnspecifiedError, `no CONNACK within ${ms} ms`);
  }
}

/**
 * A PUBLISH the server refused (5.0: PUBACK / PUBREC with a code of 0x80 or more) or one the
 * client refused to send (invalid topic 0x90, QoS above the server's maximum 0x9B, retain not
 * available 0x9A, larger than the server's maximum packet size 0x95).
 */
export class PublishError extends MqttError {
  readonly properties: Properties | undefined;
  constructor(reasonCode: number, message: string, properties?: Properties) {
    super(reasonCode, properties?.reasonString === undefined ? message : `${message}: ${properties.reasonString}`);
    this.properties = properties;
  }
}

/** A SUBSCRIBE or UNSUBSCRIBE the client refused to send (an invalid topic filter, 0x8F). */
export class SubscribeError extends MqttError {
  constructor(reasonCode: number, message: string) {
    super(reasonCode, message);
  }
}

/**
 * The connection closed before the operation completed, or the client was already closed.
 * `reasonCode` is the server's DISCONNECT code when it sent one, else that of the error that
 * closed the connection, else 0x00 (closed by `end()`).
 */
export class ClientClosedError extends MqttError {
  constructor(reasonCode: number = ReasonCode.NormalDisconnection, options?: { cause?: unknown }) {
    super(reasonCode, 'the client connection is closed', options);
  }
}

/** No PINGRESP within the keep alive interval after a PINGREQ [MQTT-3.1.2-24]. */
export class KeepaliveTimeoutError extends MqttError {
  constructor(ms: number) {
    super(ReasonCode.KeepAliveTimeout, `no PINGRESP within ${ms} ms`);
  }
}

/** A publish made while reconnecting found the offline queue full (`offlineQueue` bounds). */
export class OfflineQueueFullError extends MqttError {
  constructor() {
    super(ReasonCode.QuotaExceeded, 'the offline queue is full');
  }
}
