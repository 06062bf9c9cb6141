/**
 * AUTH (§3.15, §4.12): continues an exchange started by CONNECT, or re-authenticates a live
 * connection (0x19). The Authentication Method must stay the one of CONNECT.
 */
import { type AuthPacket, MqttError, PacketType, ProtocolError, ReasonCode } from '../../protocol/index.js';
import type { AuthStep } from '../auth-mechanism.js';
import type { Connection } from '../connection.js';
import { authStep, nextStep, startExchange } from './connect.js';

export function handleAuth(c: Connection, p: AuthPacket): void | Promise<void> {
  const auth = c.auth;
  const method = p.properties?.authenticationMethod;
  // [MQTT-4.12.0-1]: AUTH without enhanced authentication in CONNECT is a Protocol Error.
  if (auth === undefined) throw new ProtocolError('AUTH without an authentication method in CONNECT');
  if (method !== auth.method) throw new ProtocolError('AUTH with a different authentication method');
  const code = p.reasonCode ?? ReasonCode.Success;
  const data = p.properties?.authenticationData;
  if (c.phase === 'connecting') {
    if (code !== ReasonCode.ContinueAuthentication) throw new ProtocolError('AUTH during CONNECT must continue the exchange');
    const step = nextStep(c, auth.exchange, data, auth.pending?.clientId ?? '');
    return step instanceof Promise ? step.then((s) => authStep(c, s)) : authStep(c, step);
  }
  if (code === ReasonCode.ReAuthenticate) {
    const mechanism = c.state.options.authMechanisms.get(auth.method);
    if (mechanism === undefined) throw new MqttError(ReasonCode.BadAuthenticationMethod, 'mechanism no longer available');
    const exchange = startExchange(c, mechanism, {
      clientId: c.info?.clientId ?? '', username: c.info?.username, remoteAddress: c.remoteAddress, connection: c.meta, reauthenticate: true,
    });
    if (exchange === undefined) throw new MqttError(ReasonCode.UnspecifiedError, 're-authentication could not complete');
    auth.exchange = exchange;
    auth.reauthenticating = true;
  } else if (code !== ReasonCode.ContinueAuthentication || !auth.reauthenticating) {
    throw new ProtocolError('unexpected AUTH');
  }
  const step = nextStep(c, auth.exchange, data, c.info?.clientId ?? '');
  return step instanceof Promise ? step.then((s) => reauthStep(c, s)) : reauthStep(c, step);
}

/** Re-authentication: AUTH 0x18 to continue, AUTH 0x00 on success, DISCONNECT on failure [MQTT-4.12.1-2]. */
function reauthStep(c: Connection, step: AuthStep): void {
  const auth = c.auth;
  if (auth === undefined || c.phase === 'closed') return;
  if (step.status === 'failure') {
    c.fail(new MqttError(step.reasonCode ?? ReasonCode.NotAuthorized, 're-authentication failed'));
    return;
  }
  const continuing = step.status === 'continue';
  if (!continuing) auth.reauthenticating = false;
  c.send({
    type: PacketType.Auth,
    reasonCode: continuing ? ReasonCode.ContinueAuthentication : ReasonCode.Success,
    properties: { authenticationMethod: auth.method, ...(step.data ? { authenticationData: step.data } : {}) },
  });
}
