/**
 * CONNECT (§3.1): identify the client, authenticate, take over an existing connection,
 * resume or start the session, store the will, answer CONNACK, then resend what the resumed
 * session still owes the client.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  AllowedReasonCodes, type ConnectPacket, MqttError, PacketType, type Properties, ProtocolVersion, ReasonCode, type WillMessage,
} from '../../protocol/index.js';
import type { AuthExchange, AuthMechanism, AuthStartContext, AuthStep } from '../auth-mechanism.js';
import type { AuthVerdict } from '../extensions.js';
import type { Connection } from '../connection.js';
import type { ClientInfo } from '../events.js';
import { ownedProperties } from '../message.js';
import { restoreState } from '../restore.js';
import { responseTopicInvalid } from './publish.js';

export function handleConnect(c: Connection, packet: ConnectPacket): void | Promise<void> {
  // A verified client certificate names the user on a listener that says so (certUsername):
  // hooks, events and logs see that name, not the one in CONNECT.
  const certUsername = c.meta.certUsername;
  const p = certUsername === undefined ? packet : { ...packet, username: certUsername };
  c.version = p.protocolVersion;
  c.phase = 'connecting';
  // [MQTT-3.1.2-24]: known before any reply, a refusing CONNACK included.
  if (p.protocolVersion === ProtocolVersion.V5) c.clientMaxPacketSize = p.properties?.maximumPacketSize ?? 0x10000000;
  const st = c.state;
  if (st.closing) return refuse(c, ReasonCode.ServerUnavailable, 'server shutting down', p);
  // The listener's maxConnectionRate / maxConnectionRatePerSource: 0x9F (3.1.1: 3), before any other work.
  if (st.limits.connectRate(c) !== ReasonCode.Success) return refuse(c, ReasonCode.ConnectionRateExceeded, 'connection rate exceeded', p);
  let clientId = p.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    // [MQTT-3.1.3-8]: a zero-length id with Clean Session 0 is rejected (3.1.1); 3.1 requires an id.
    if (p.protocolVersion === ProtocolVersion.V31 || (p.protocolVersion === ProtocolVersion.V311 && !p.clean)) {
      return refuse(c, ReasonCode.ClientIdentifierNotValid, 'empty client identifier', p);
    }
    // [MQTT-3.1.3-6]: the server assigns a unique identifier.
    clientId = `petrel-${randomBytes(9).toString('base64url')}`;
    assigned = p.protocolVersion === ProtocolVersion.V5;
  } else if (p.protocolVersion === ProtocolVersion.V31 && clientId.length > 23) {
    // MQTT 3.1: a client identifier has 1 to 23 characters; others get return code 2.
    return refuse(c, ReasonCode.ClientIdentifierNotValid, 'client identifier longer than 23 characters', p);
  }
  // [MQTT-3.2.2-12] [MQTT-3.2.2-13]: a will the broker could not honour is refused at CONNECT.
  if (p.protocolVersion === ProtocolVersion.V5) {
    // §3.1.2.11.10: Authentication Data without an Authentication Method is a Protocol Error.
    if (p.properties?.authenticationData !== undefined && p.properties.authenticationMethod === undefined) {
      return refuse(c, ReasonCode.ProtocolError, 'authentication data without an authentication method', p);
    }
    if (p.will !== undefined) {
      if (p.will.qos > st.options.maximumQoS) return refuse(c, ReasonCode.QoSNotSupported, 'will QoS not supported', p);
      if (p.will.retain && !st.options.retainAvailable) return refuse(c, ReasonCode.RetainNotSupported, 'retain not supported', p);
      // [MQTT-3.1.3-11]: the will's Response Topic is a topic name: not empty, no wildcards.
      if (responseTopicInvalid(p.will.properties?.responseTopic)) return refuse(c, ReasonCode.ProtocolError, 'invalid will response topic', p);
    }
  }
  // Redirection (5.0 §4.11): 0x9C Use Another Server or 0x9D Server Moved, with a Server Reference.
  const reference = st.options.serverReference;
  if (reference !== undefined && p.protocolVersion === ProtocolVersion.V5) {
    const code = st.options.serverMoved ? ReasonCode.ServerMoved : ReasonCode.UseAnotherServer;
    c.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: code, properties: { serverReference: reference } });
    c.close(new MqttError(code, 'redirected'));
    return;
  }
  const pending: PendingConnect = { packet: p, clientId, assigned };
  const method = p.properties?.authenticationMethod;
  if (method !== undefined) return startEnhancedAuth(c, pending, method);
  const auth = st.ext.authenticate;
  if (auth === undefined) return accept(c, pending, undefined);
  const verdict = auth(c, p, clientId);
  if (!(verdict instanceof Promise)) return authenticated(c, pending, verdict);
  return verdict.then((v) => authenticated(c, pending, v));
}

function authenticated(c: Connection, pending: PendingConnect, verdict: AuthVerdict): void | Promise<void> {
  if (c.phase === 'closed') return;
  const code = verdict.code;
  if (code !== ReasonCode.Success) return refuse(c, code, code === ReasonCode.UnspecifiedError ? 'authentication could not complete' : 'authentication failed', pending.packet);
  // An accepting hook may rename the client and attach an ACL and data (hooks.ts AuthenticateResult).
  if (verdict.clientId !== undefined && verdict.clientId !== pending.clientId) {
    pending.clientId = verdict.clientId;
    // [MQTT-3.2.2-16]: a 5.0 client learns an identifier it did not choose from CONNACK.
    pending.assigned = pending.packet.protocolVersion === ProtocolVersion.V5;
  }
  if (verdict.username !== undefined || verdict.acl !== undefined || verdict.data !== undefined) pending.grant = verdict;
  return accept(c, pending, undefined);
}

const authFailed: AuthStep = { status: 'failure', reasonCode: ReasonCode.UnspecifiedError };
const authTimedOut: AuthStep = { status: 'failure', reasonCode: ReasonCode.NotAuthorized };
const isAuthStep = (v: unknown): AuthStep | undefined => {
  if (typeof v !== 'object' || v === null) return undefined;
  const status = (v as { status?: unknown }).status;
  return status === 'continue' || status === 'success' || status === 'failure' ? v as AuthStep : undefined;
};

/** Starts an enhanced authentication exchange; undefined when the mechanism's code threw. */
export function startExchange(c: Connection, mechanism: AuthMechanism, ctx: AuthStartContext): AuthExchange | undefined {
  try {
    const exchange = mechanism.start(ctx);
    if (typeof exchange === 'object' && exchange !== null && typeof exchange.next === 'function') return exchange;
    throw new TypeError('authentication mechanism start() did not return an exchange');
  } catch (err) {
    c.state.userCode.failed(err, 'authMechanism', ctx.clientId);
    return undefined;
  }
}

/** One step of the mechanism's exchange, isolated and under the hook time limit. */
export function nextStep(c: Connection, exchange: AuthExchange, data: Buffer | undefined, clientId: string): AuthStep | Promise<AuthStep> {
  return c.state.userCode.run(
    'authMechanism', clientId, (d: Buffer | undefined) => exchange.next(d), data, isAuthStep, authTimedOut, authFailed, c.state.counters.hooks.authMechanism,
  );
}

/** [MQTT-4.12.0-1]: CONNECT with an Authentication Method starts that mechanism's exchange. */
function startEnhancedAuth(c: Connection, pending: PendingConnect, method: string): void | Promise<void> {
  const mechanism = c.state.options.authMechanisms.get(method);
  if (mechanism === undefined) return refuse(c, ReasonCode.BadAuthenticationMethod, 'unsupported authentication method', pending.packet);
  const exchange = startExchange(c, mechanism, {
    clientId: pending.clientId, username: pending.packet.username, remoteAddress: c.remoteAddress, connection: c.meta, reauthenticate: false,
  });
  if (exchange === undefined) return refuse(c, ReasonCode.UnspecifiedError, 'authentication could not complete', pending.packet);
  c.auth = { method, pending, exchange };
  const step = nextStep(c, exchange, pending.packet.properties?.authenticationData, pending.clientId);
  if (!(step instanceof Promise)) return authStep(c, step);
  return step.then((s) => authStep(c, s));
}

/** Applies one step of an exchange during CONNECT: AUTH 0x18, CONNACK success, or CONNACK failure. */
export function authStep(c: Connection, step: AuthStep): void | Promise<void> {
  const auth = c.auth;
  if (auth === undefined || auth.pending === undefined || c.phase === 'closed') return;
  if (step.status === 'continue') {
    c.send({
      type: PacketType.Auth, reasonCode: ReasonCode.ContinueAuthentication,
      properties: { authenticationMethod: auth.method, authenticationData: step.data },
    });
    return;
  }
  if (step.status === 'failure') return refuse(c, step.reasonCode ?? ReasonCode.NotAuthorized, 'authentication failed', auth.pending.packet);
  const pending = auth.pending;
  auth.pending = undefined;
  return accept(c, pending, { authenticationMethod: auth.method, ...(step.data ? { authenticationData: step.data } : {}) });
}

/** Answers CONNACK with a failure code and closes [MQTT-3.2.2-6] [MQTT-3.2.2-7]. */
export function refuse(c: Connection, code: number, reason: string, who?: { clientId: string; username?: string | undefined }): void {
  // A code from user code (an authentication mechanism) that CONNACK cannot carry becomes 0x80.
  if (code < 0x80 || !(AllowedReasonCodes[PacketType.Connack] as ReadonlySet<number>).has(code)) code = ReasonCode.UnspecifiedError;
  // Refused connections are an operator's business: one info line each, as for connects.
  c.state.logger.info({
    clientId: who?.clientId, username: who?.username, remote: c.remoteAddress, listener: c.meta.listener?.name, protocolVersion: c.version, reasonCode: code, reason,
  }, 'connection refused');
  const properties: Properties | undefined = c.version === ProtocolVersion.V5 ? { reasonString: reason } : undefined;
  c.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: code, ...(properties ? { properties } : {}) });
  c.close(new MqttError(code, reason));
}

export interface PendingConnect {
  packet: ConnectPacket;
  clientId: string;
  assigned: boolean;
  /** What an accepting authenticate hook attached (username, ACL, data). */
  grant?: AuthVerdict;
}

function accept(c: Connection, pending: PendingConnect, authProps: Properties | undefined): void | Promise<void> {
  const cluster = c.state.cluster;
  if (cluster?.claim === undefined) return acceptNow(c, pending, authProps);
  return claimed(c, cluster.claim(pending.clientId, pending.packet.clean), pending, authProps);
}

/**
 * In a cluster: the client id is leased cluster-wide first (the node that had the client, or its
 * session, lets it go: 0x8E there), then its session is loaded from the shared store unless it is
 * here already, then CONNECT is accepted as usual. A lease that cannot be had in time: 0x89.
 */
async function claimed(c: Connection, claim: Promise<number>, pending: PendingConnect, authProps: Properties | undefined): Promise<void> {
  const st = c.state;
  const cluster = st.cluster!;
  let token: number;
  try {
    token = await claim;
  } catch (err) {
    st.logger.warn({ clientId: pending.clientId, err }, 'cluster: client id lease not obtained');
    return refuse(c, ReasonCode.ServerBusy, 'client identifier busy on another node', pending.packet);
  }
  const store = st.durability?.store;
  try {
    if (c.phase !== 'closed' && store?.loadSession !== undefined) {
      const loaded = await store.loadSession(pending.clientId, token);
      const here = st.registry.get(pending.clientId);
      const prevNode = loaded.previousOwner?.slice(0, loaded.previousOwner.lastIndexOf('|'));
      const moved = prevNode !== undefined && prevNode !== cluster.nodeId;
      if (here !== undefined && moved) st.registry.release(here, false);
      if ((here === undefined || moved) && loaded.state.sessions.length > 0) restoreState(st, loaded.state);
    }
  } catch (err) {
    cluster.unclaimed?.(pending.clientId, token);
    st.logger.error({ clientId: pending.clientId, err }, 'cluster: session could not be loaded');
    return refuse(c, ReasonCode.UnspecifiedError, 'session could not be loaded', pending.packet);
  }
  if (c.phase === 'closed') {
    cluster.unclaimed?.(pending.clientId, token);
    return;
  }
  c.leaseToken = token;
  acceptNow(c, pending, authProps);
  if (c.phase !== 'connected') {
    c.leaseToken = 0;
    cluster.unclaimed?.(pending.clientId, token);
    return;
  }
  cluster.connected?.(pending.clientId, token);
  // The CONNACK (and what follows it) is written once the session's record is in the shared
  // store: a node killed right after CONNACK loses no session, and its will is published by a
  // survivor. The client's next packets wait meanwhile (this handler is still running).
  const durability = st.durability;
  if (durability === undefined || !durability.pending) return;
  c.holdOutput();
  try {
    await durability.commit();
  } catch (err) {
    st.logger.error({ clientId: pending.clientId, err }, 'cluster: session could not be stored; connection closed');
    c.close(new MqttError(ReasonCode.UnspecifiedError, 'session could not be stored'));
    return;
  }
  c.releaseOutput();
}

function acceptNow(c: Connection, pending: PendingConnect, authProps: Properties | undefined): void {
  const { packet: p, clientId, assigned, grant } = pending;
  const st = c.state;
  const now = st.clock.now();
  const opts = st.options;
  const props = p.properties;
  const v5 = p.protocolVersion === ProtocolVersion.V5;

  // [MQTT-3.1.4-2]: a second connection with the same client id takes over; 5.0 says why (0x8E).
  const found = st.connections.get(clientId);
  const old = found !== c ? found : undefined;
  // Flapping (an id connecting again and again), then the connection quotas; a takeover replaces
  // the connection it takes over, so it does not count twice. Refused before the old one is touched.
  if (p.clientId.length > 0 && !st.limits.mayConnect(clientId, c.remoteAddress)) return refuse(c, ReasonCode.Banned, 'client identifier banned for reconnecting too often', p);
  if (st.limits.connectionQuota(c, st.connections.size, old) !== ReasonCode.Success) return refuse(c, ReasonCode.QuotaExceeded, 'too many connections', p);
  if (old !== undefined) {
    // [MQTT-3.1.2-8]: a new connection that continues the session (Clean Start 0, a session that
    // outlives its connection) is open before any will delay could elapse: the old will is not
    // published. With Clean Start 1, or a session that ends with the old connection, it is.
    if (!p.clean && old.session !== undefined && old.session.expiryInterval !== 0) old.will = undefined;
    old.fail(new MqttError(ReasonCode.SessionTakenOver, 'session taken over'));
  }

  // [MQTT-3.1.2-4] [MQTT-3.1.2-5]: resumed, unless Clean Start or it expired meanwhile; or new.
  const { session, present } = st.registry.open(clientId, p.clean, now);
  const requestedExpiry = v5 ? (props?.sessionExpiryInterval ?? 0) : p.clean ? 0 : 0xffffffff;
  session.expiryInterval = Math.min(requestedExpiry, opts.maxSessionExpiryInterval);
  c.connectExpiry = requestedExpiry;
  // [MQTT-3.3.4-9]: never more in flight than the client's Receive Maximum.
  session.window = Math.min(opts.maxInflight, props?.receiveMaximum ?? 65535);

  // The will outlives the CONNECT bytes it was decoded from: keep a copy, not a view of the chunk.
  c.will = p.will === undefined ? undefined : copyWill(p.will, opts.maximumQoS, opts.retainAvailable);
  // A persistent session is stored with the will of its connection (published after a restart
  // that the connection did not survive); one that ends with its connection is not kept.
  const durability = st.durability;
  if (durability !== undefined) {
    if (session.expiryInterval !== 0) {
      durability.sessionConnected(session, c.will);
      // Its QoS 1/2 deliveries are stored from now on.
      session.durable = durability;
    } else if (c.will !== undefined && st.cluster !== undefined) {
      // In a cluster, a will is stored with its session even when the session ends with the
      // connection: if this node dies, a survivor publishes it.
      durability.sessionConnected(session, c.will);
    } else durability.sessionEnded(session);
  }
  c.keepalive = p.keepalive;
  let serverKeepAlive: number | undefined;
  if (v5 && opts.maxKeepalive > 0 && (p.keepalive === 0 || p.keepalive > opts.maxKeepalive)) {
    serverKeepAlive = opts.maxKeepalive;
    c.keepalive = serverKeepAlive;
  }
  if (v5) {
    c.clientMaxPacketSize = props?.maximumPacketSize ?? 0x10000000;
    c.clientAliasMax = opts.outboundTopicAliases ? (props?.topicAliasMaximum ?? 0) : 0;
    c.problemInfo = props?.requestProblemInformation ?? true;
  }
  // What `c.info` (the ClientInfo) is built from when first asked for.
  c.username = p.username;
  c.cleanStart = p.clean;
  c.session = session;
  if (grant !== undefined) {
    // What an accepting hook attached lives on the ClientInfo, built now for such clients only.
    if (grant.username !== undefined) c.username = grant.username;
    const info = c.info as ClientInfo;
    if (grant.acl !== undefined) info.acl = grant.acl;
    if (grant.data !== undefined) info.data = grant.data;
  }
  c.phase = 'connected';
  st.connections.set(clientId, c);
  st.counters.connected(c.meta.listener?.name, c.version);
  st.connecting.delete(c);
  st.limits.connected(c);

  const connack = { type: PacketType.Connack, sessionPresent: present, reasonCode: ReasonCode.Success } as const;
  if (v5) {
    const properties = connackProperties(c, p, { assigned: assigned ? clientId : undefined, serverKeepAlive, expiry: session.expiryInterval });
    const all = authProps === undefined ? properties : { ...properties, ...authProps };
    c.send(all === undefined ? connack : { ...connack, properties: all });
  } else {
    c.send(connack);
  }
  session.link = c;
  session.resend(now);
  st.scheduleKeepalive(c);
  // One resend timer per session, however often the client reconnects.
  if (opts.retryInterval > 0 && !v5 && !session.retryScheduled) {
    session.retryScheduled = true;
    st.wheel.schedule(session, now + opts.retryInterval * 1000);
  }
  if (st.events.listenerCount('clientConnected') > 0) st.events.fire('clientConnected', c.info as ClientInfo);
}

function connackProperties(
  c: Connection, p: ConnectPacket, extra: { assigned: string | undefined; serverKeepAlive: number | undefined; expiry: number },
): Properties | undefined {
  const o = c.state.options;
  const out: Properties = {};
  const requested = p.properties?.sessionExpiryInterval ?? 0;
  if (extra.expiry !== requested) out.sessionExpiryInterval = extra.expiry;
  if (o.receiveMaximum < 65535) out.receiveMaximum = o.receiveMaximum;
  if (o.maximumQoS < 2) out.maximumQoS = o.maximumQoS as 0 | 1;
  if (!o.retainAvailable) out.retainAvailable = false;
  out.maximumPacketSize = o.maxPacketSize;
  if (extra.assigned !== undefined) out.assignedClientIdentifier = extra.assigned;
  if (o.topicAliasMaximum > 0) out.topicAliasMaximum = o.topicAliasMaximum;
  if (!o.wildcardSubscriptionAvailable) out.wildcardSubscriptionAvailable = false;
  if (!o.subscriptionIdentifiersAvailable) out.subscriptionIdentifierAvailable = false;
  if (!o.sharedSubscriptionsAvailable) out.sharedSubscriptionAvailable = false;
  if (extra.serverKeepAlive !== undefined) out.serverKeepAlive = extra.serverKeepAlive;
  if (p.properties?.requestResponseInformation === true && o.responseInformation !== undefined) {
    out.responseInformation = o.responseInformation;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function copyWill(will: WillMessage, maximumQoS: number, retainAvailable: boolean): WillMessage {
  // 3.1.1 cannot refuse a will QoS at CONNECT: it is capped at the broker's Maximum QoS instead.
  const qos = (will.qos > maximumQoS ? maximumQoS : will.qos) as WillMessage['qos'];
  // Nor a retained will: without retainAvailable it is published as a plain message (5.0 was refused above).
  const retain = will.retain && retainAvailable;
  const copy: WillMessage = { ...will, qos, retain, payload: Buffer.from(will.payload) };
  const properties = ownedProperties(will.properties);
  if (properties !== undefined) copy.properties = properties;
  return copy;
}
