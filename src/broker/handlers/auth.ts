/** AUTH (§3.15, §4.12): enhanced authentication. Without a configured mechanism AUTH is a protocol error. */
import { type AuthPacket, ProtocolError } from '../../protocol/index.js';
import type { Connection } from '../connection.js';

export function handleAuth(c: Connection, _p: AuthPacket): void {
  // [MQTT-4.12.0-1]: AUTH without an authentication method in CONNECT is a Protocol Error.
  throw new ProtocolError(`AUTH without an authentication method (client ${c.info?.clientId ?? 'unknown'})`);
}
