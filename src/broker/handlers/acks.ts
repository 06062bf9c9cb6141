/**
 * PUBACK, PUBREC and PUBCOMP from the client: the outbound QoS 1/2 flows (§4.3). An
 * acknowledgement of the wrong kind for a delivery in flight (PUBACK or PUBCOMP for QoS 2 before
 * PUBREC, PUBREC or PUBCOMP for QoS 1, PUBACK after PUBREL) is a protocol error: 3.1.1 closes
 * the connection, 5.0 sends DISCONNECT 0x82 (§4.3, §4.13).
 */
import { type PubackPacket, type PubcompPacket, type PubrecPacket, ProtocolError } from '../../protocol/index.js';
import type { Connection } from '../connection.js';
import { sendPubrel } from './publish.js';

export function handlePuback(c: Connection, p: PubackPacket): void {
  // An unknown identifier is ignored: it may answer a message resent before a reconnect.
  const result = c.session?.complete(p.packetId, 1, c.state.now());
  if (result === 'mismatch') throw new ProtocolError('PUBACK for a QoS 2 delivery');
}

export function handlePubrec(c: Connection, p: PubrecPacket): void {
  const session = c.session;
  if (session === undefined) return;
  const failed = (p.reasonCode ?? 0) >= 0x80;
  const result = session.received(p.packetId, failed, c.state.now());
  if (result === 'mismatch') throw new ProtocolError('PUBREC for a QoS 1 delivery');
  if (failed) return;
  sendPubrel(c, p.packetId, result === 'done');
}

export function handlePubcomp(c: Connection, p: PubcompPacket): void {
  const result = c.session?.complete(p.packetId, 2, c.state.now());
  if (result === 'mismatch') throw new ProtocolError('PUBCOMP for a QoS 1 delivery or before PUBREC');
}
