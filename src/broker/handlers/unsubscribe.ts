/** UNSUBSCRIBE (§3.10): 5.0 answers 0x11 for a filter the client had not subscribed to. */
import { PacketType, ProtocolVersion, ReasonCode, type UnsubscribePacket } from '../../protocol/index.js';
import type { Connection } from '../connection.js';

export function handleUnsubscribe(c: Connection, p: UnsubscribePacket): void {
  const session = c.session;
  if (session === undefined) return;
  const codes: number[] = [];
  const removed: string[] = [];
  for (const filter of p.topicFilters) {
    const rec = session.deleteSubscription(filter);
    if (rec === undefined) {
      codes.push(ReasonCode.NoSubscriptionExisted);
      continue;
    }
    c.state.removeSubscription(rec);
    if (session.expiryInterval !== 0) c.state.durability?.unsubscribed(session.clientId, filter);
    if (rec.group !== undefined) c.state.redistribute(session, 'left', rec.group);
    codes.push(ReasonCode.Success);
    removed.push(filter);
  }
  // [MQTT-3.10.4-4]: UNSUBACK even when nothing was removed.
  if (c.version === ProtocolVersion.V5) c.send({ type: PacketType.Unsuback, packetId: p.packetId, reasonCodes: codes });
  else c.send({ type: PacketType.Unsuback, packetId: p.packetId });
  if (removed.length > 0) c.state.events.fire('unsubscribed', session.clientId, removed);
}
