/** PUBACK, PUBREC and PUBCOMP from the client: the outbound QoS 1/2 flows (§4.3). */
import { PacketType, type PubackPacket, type PubcompPacket, type PubrecPacket, ReasonCode } from '../../protocol/index.js';
import type { Connection } from '../connection.js';

export function handlePuback(c: Connection, p: PubackPacket): void {
  // An unknown identifier is ignored: it may answer a message resent before a reconnect.
  c.session?.complete(p.packetId, 1, c.state.clock.now());
}

export function handlePubrec(c: Connection, p: PubrecPacket): void {
  const session = c.session;
  if (session === undefined) return;
  const failed = (p.reasonCode ?? 0) >= 0x80;
  const known = session.received(p.packetId, failed, c.state.clock.now());
  if (failed) return;
  // [MQTT-4.3.3-4]: answer PUBREC with PUBREL; 5.0 reports an unknown identifier with 0x92.
  if (known) c.sendAck(PacketType.Pubrel, p.packetId);
  else c.send({ type: PacketType.Pubrel, packetId: p.packetId, reasonCode: ReasonCode.PacketIdentifierNotFound });
}

export function handlePubcomp(c: Connection, p: PubcompPacket): void {
  c.session?.complete(p.packetId, 2, c.state.clock.now());
}
