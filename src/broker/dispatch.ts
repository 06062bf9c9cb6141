/**
 * One place for the checks every packet goes through, and the one place that turns an error into
 * the wire (failConnection): CONNECT first and only once
 * [MQTT-3.1.0-1] [MQTT-3.1.0-2], packets a client may not send, then the packet's handler.
 */
import {
  AllowedReasonCodes, MqttError, type Packet, PacketType, type Properties, ProtocolError, ProtocolVersion, ReasonCode, UnsupportedProtocolVersionError,
} from '../protocol/index.js';
import type { Connection } from './connection.js';
import { handleAuth } from './handlers/auth.js';
import { handleConnect } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePingreq } from './handlers/pingreq.js';
import { handlePuback, handlePubcomp, handlePubrec } from './handlers/acks.js';
import { handlePublish } from './handlers/publish.js';
import { handlePubrel } from './handlers/pubrel.js';
import { handleSubscribe } from './handlers/subscribe.js';
import { handleUnsubscribe } from './handlers/unsubscribe.js';

export function dispatch(c: Connection, p: Packet): void | Promise<void> {
  if (c.phase !== 'connected') {
    if (p.type === PacketType.Connect && c.phase === 'new') return handleConnect(c, p);
    // AUTH may continue an enhanced authentication started by CONNECT.
    if (p.type === PacketType.Auth && c.phase === 'connecting') return handleAuth(c, p);
    // A client may give up during an enhanced authentication exchange: the connection just closes.
    if (p.type === PacketType.Disconnect && c.phase === 'connecting') return c.close(undefined);
    throw new ProtocolError(c.phase === 'new' ? 'the first packet must be CONNECT [MQTT-3.1.0-1]' : 'packet before CONNACK');
  }
  switch (p.type) {
    case PacketType.Publish: return handlePublish(c, p);
    case PacketType.Puback: return handlePuback(c, p);
    case PacketType.Pubrec: return handlePubrec(c, p);
    case PacketType.Pubrel: return handlePubrel(c, p);
    case PacketType.Pubcomp: return handlePubcomp(c, p);
    case PacketType.Subscribe: return handleSubscribe(c, p);
    case PacketType.Unsubscribe: return handleUnsubscribe(c, p);
    case PacketType.Pingreq: return handlePingreq(c);
    case PacketType.Disconnect: return handleDisconnect(c, p);
    case PacketType.Auth: return handleAuth(c, p);
    case PacketType.Connect: throw new ProtocolError('second CONNECT [MQTT-3.1.0-2]');
    default: throw new ProtocolError(`a client may not send packet type ${p.type}`);
  }
}

/** Errors become CONNACK (before CONNECT completes) or DISCONNECT (5.0) with their reason code, then the connection closes. */
export function failConnection(conn: Connection, err: unknown, extra?: Properties): void {
  if (conn.phase === 'closed') return;
  const error = err instanceof Error ? err : new Error(String(err));
  const code = err instanceof MqttError ? err.reasonCode : ReasonCode.UnspecifiedError;
  if (!(err instanceof MqttError)) conn.state.logger.error({ err: error, clientId: conn.info?.clientId }, 'connection failed');
  // A refusal before CONNACK is logged at info (the default level); after CONNACK the
  // 'client disconnected' line already carries the reason, so this one stays at debug.
  else conn.state.logger[conn.info === undefined ? 'info' : 'debug']({ clientId: conn.info?.clientId, remote: conn.remoteAddress, listener: conn.meta.listener?.name, reasonCode: code, reason: error.message }, 'connection closed on error');
  if (conn.phase === 'new' && err instanceof UnsupportedProtocolVersionError) {
    // [MQTT-3.1.2-2]: CONNACK 0x01 (3.1.1 form) for a level the broker does not speak.
    conn.version = ProtocolVersion.V311;
    conn.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: ReasonCode.UnsupportedProtocolVersion });
  } else if (conn.version === ProtocolVersion.V5) {
    const allowed = (AllowedReasonCodes[PacketType.Disconnect] as ReadonlySet<number>).has(code) && code >= 0x80;
    const reasonCode = allowed ? code : ReasonCode.UnspecifiedError;
    if (conn.phase === 'connected') {
      // `extra` carries what the reason needs (a Server Reference for 0x9C / 0x9D).
      // Only Petrel's own errors explain themselves: the text of anything else (a hook's error,
      // a bug) may hold internal details and stays in the log.
      const reason = conn.problemInfo && err instanceof MqttError ? { reasonString: error.message } : {};
      const properties: Properties = { ...reason, ...extra };
      conn.send({ type: PacketType.Disconnect, reasonCode, ...(Object.keys(properties).length > 0 ? { properties } : {}) });
    } else if ((AllowedReasonCodes[PacketType.Connack] as ReadonlySet<number>).has(code)) {
      conn.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: code });
    }
  }
  conn.close(error);
}
