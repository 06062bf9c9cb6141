import { PacketType } from '../../protocol/index.js';
import type { Connection } from '../connection.js';

/** [MQTT-3.12.4-1]: PINGREQ is answered with PINGRESP. */
export function handlePingreq(c: Connection): void {
  c.send({ type: PacketType.Pingresp });
}
