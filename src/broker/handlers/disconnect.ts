/** DISCONNECT from the client (§3.14). */
import { type DisconnectPacket, ProtocolError, ReasonCode } from '../../protocol/index.js';
import type { Connection } from '../connection.js';

export function handleDisconnect(c: Connection, p: DisconnectPacket): void {
  const session = c.session;
  const expiry = p.properties?.sessionExpiryInterval;
  if (expiry !== undefined && session !== undefined) {
    // [MQTT-3.14.2-2]: a session that was to end at disconnect cannot be extended here.
    if (c.connectExpiry === 0 && expiry !== 0) throw new ProtocolError('session expiry set on DISCONNECT after 0 in CONNECT [MQTT-3.14.2-2]');
    session.expiryInterval = Math.min(expiry, c.state.options.maxSessionExpiryInterval);
  }
  // [MQTT-3.14.4-3] [MQTT-3.1.2-8]: only a normal DISCONNECT (0x00) discards the will; 0x04 asks
  // for it, and a client that disconnects with an error code (0x80 and up) gets it published too.
  if ((p.reasonCode ?? ReasonCode.NormalDisconnection) === ReasonCode.NormalDisconnection) c.will = undefined;
  c.graceful = true;
  c.disconnectReason = p.reasonCode ?? ReasonCode.NormalDisconnection;
  c.close(undefined);
}
