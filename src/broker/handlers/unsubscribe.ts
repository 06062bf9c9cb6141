/** UNSUBSCRIBE (§3.10): 5.0 answers 0x11 for a filter the client had not subscribed to. */
import { PacketType, ProtocolVersion, ReasonCode, type UnsubscribePacket } from '../../protocol/index.js';
import type { Connection } from '../connection.js';
import type { Session } from '../session.js';
import type { BrokerState } from '../state.js';

export function handleUnsubscribe(c: Connection, p: UnsubscribePacket): void {
  const session = c.session;
  if (session === undefined) return;
  const codes: number[] = [];
  const removed: string[] = [];
  for (const filter of p.topicFilters) {
    if (!unsubscribeOne(c.state, session, filter)) {
      codes.push(ReasonCode.NoSubscriptionExisted);
      continue;
    }
    codes.push(ReasonCode.Success);
    removed.push(filter);
  }
  // [MQTT-3.10.4-4]: UNSUBACK even when nothing was removed.
  if (c.version === ProtocolVersion.V5) c.send({ type: PacketType.Unsuback, packetId: p.packetId, reasonCodes: codes });
  else c.send({ type: PacketType.Unsuback, packetId: p.packetId });
  if (removed.length > 0) c.state.events.fire('unsubscribed', session.clientId, removed);
}

/**
 * Removes one subscription of `session`; false when there was none. Also used for an operator's
 * unsubscribe on a client's behalf.
 */
export function unsubscribeOne(st: BrokerState, session: Session, filter: string): boolean {
  const rec = session.deleteSubscription(filter);
  if (rec === undefined) return false;
  st.removeSubscription(rec);
  if (session.expiryInterval !== 0) st.durability?.unsubscribed(session.clientId, filter);
  if (rec.group !== undefined) st.redistribute(session, 'left', rec.group);
  return true;
}
