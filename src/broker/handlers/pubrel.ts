/** PUBREL from the client ends an inbound QoS 2 flow (§4.3.3). */
import { MqttError, PacketType, type PubrelPacket, ReasonCode } from '../../protocol/index.js';
import type { Connection } from '../connection.js';
import { replyAfterCommit } from '../durability.js';

export function handlePubrel(c: Connection, p: PubrelPacket): void {
  const session = c.session;
  if (session === undefined) return;
  // [MQTT-4.3.3-12]: after PUBCOMP the identifier may be reused; the message was delivered at PUBLISH time.
  const known = session.releasedQos2(p.packetId);
  const durability = c.state.durability;
  // Without a store, at once (and no closure per PUBREL).
  if (durability === undefined) return writePubcomp(c, p.packetId, known);
  // With a store, PUBCOMP waits until the identifier's release is durable: a restart must not
  // bring back "PUBREC sent" for an identifier that the client, told PUBCOMP, uses again for a new
  // message, which would then be taken for a repeat and never routed [MQTT-4.3.3-12].
  replyAfterCommit(durability, c.state.ackChains, c, () => writePubcomp(c, p.packetId, known), storeFailed);
}

function writePubcomp(c: Connection, packetId: number, known: boolean): void {
  if (known) c.sendAck(PacketType.Pubcomp, packetId);
  else c.send({ type: PacketType.Pubcomp, packetId, reasonCode: ReasonCode.PacketIdentifierNotFound });
}

const storeFailed = (): Error => new MqttError(ReasonCode.UnspecifiedError, 'the release could not be stored');
