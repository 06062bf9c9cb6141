/** PUBREL from the client ends an inbound QoS 2 flow (§4.3.3). */
import { PacketType, type PubrelPacket, ReasonCode } from '../../protocol/index.js';
import type { Connection } from '../connection.js';

export function handlePubrel(c: Connection, p: PubrelPacket): void {
  const session = c.session;
  if (session === undefined) return;
  // [MQTT-4.3.3-9]: after PUBREL the identifier may be reused; the message was delivered at PUBLISH time.
  if (session.releasedQos2(p.packetId)) c.sendAck(PacketType.Pubcomp, p.packetId);
  else c.send({ type: PacketType.Pubcomp, packetId: p.packetId, reasonCode: ReasonCode.PacketIdentifierNotFound });
}
