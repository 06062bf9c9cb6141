/**
 * Clients, sessions and retained messages: paged lists (sorted by id, streamed a chunk at a
 * time), one item by id, and deletion. Client paths and fields are mica-mqtt's.
 */
import type { ClientDetails, SubscriptionInfo } from '../../broker/broker.js';
import { topicFilterProblem } from '../../protocol/index.js';
import { type Encoding, encode } from './payload.js';
import { type PageQuery, pageOf, pageStream } from './paging.js';
import { badField, notFound, type RouteContext, type RouteDef } from './route.js';
import {
  clientIdQuery, clientSchema, encoding, ok, okEmpty, pageOf as pageSchema, pageQuery, retainedSchema, sessionSchema, subscriptionSchema,
} from './schemas.js';

/** A client as the API shows it: mica-mqtt's field names (ipAddress, port, protoName, protoVer, connectedAt) and Petrel's counts. */
function clientView(c: ClientDetails): Record<string, unknown> {
  return {
    clientId: c.clientId, username: c.username ?? null, connected: true,
    protoName: c.protocolVersion === 3 ? 'MQIsdp' : 'MQTT', protoVer: c.protocolVersion,
    ipAddress: c.remoteAddress ?? null, port: c.remotePort ?? null, listener: c.listener ?? null, transport: c.transport ?? null,
    keepalive: c.keepalive, cleanStart: c.cleanStart, createdAt: c.connectedAt, connectedAt: c.connectedAt,
    subscriptions: c.subscriptions, queued: c.queued, inflight: c.inflight, expiryInterval: c.expiryInterval,
  };
}

function subscriptionView(clientId: string, s: SubscriptionInfo): Record<string, unknown> {
  return {
    clientId, topicFilter: s.topicFilter, mqttQoS: s.qos, noLocal: s.noLocal, retainAsPublished: s.retainAsPublished,
    retainHandling: s.retainHandling, subscriptionIdentifier: s.subscriptionIdentifier ?? null,
  };
}

const query = (q: unknown): Record<string, string> => q as Record<string, string>;

export function clientRoutes(ctx: RouteContext): RouteDef[] {
  const { broker } = ctx;
  const sessionView = (clientId: string): Record<string, unknown> | undefined => {
    const s = broker.sessionDetails(clientId);
    if (s === undefined) return undefined;
    return {
      clientId, connected: s.connected, expiryInterval: s.expiryInterval,
      expiresInSeconds: s.expiresIn === undefined ? null : Math.ceil(s.expiresIn / 1000),
      subscriptions: s.subscriptions, queued: s.queued, inflight: s.inflight,
    };
  };
  return [
    {
      method: 'GET', url: '/api/v1/clients', tag: 'clients', access: 'read', streamed: true,
      summary: 'Connected clients, sorted by client id, a page at a time (_page/_limit, or the cursor after)',
      querystring: pageQuery(), response: pageSchema(clientSchema),
      handler: async (req, reply) => {
        const page = pageOf(broker.clientIds(), req.query as PageQuery);
        return reply.type('application/json').send(pageStream(page, (id) => {
          const c = broker.clientDetails(id);
          return c === undefined ? undefined : clientView(c);
        }));
      },
    },
    {
      method: 'GET', url: '/api/v1/clients/info', tag: 'clients', access: 'read',
      summary: 'One connected client', querystring: clientIdQuery, response: ok(clientSchema),
      handler: async (req) => {
        const id = query(req.query).clientId as string;
        const c = broker.clientDetails(id);
        if (c === undefined) throw notFound(`client "${id}" is not connected`);
        return { code: 1, data: clientView(c) };
      },
    },
    {
      method: 'POST', url: '/api/v1/clients/delete', tag: 'clients', access: 'write',
      summary: 'Kicks a client: disconnects it (MQTT 5: DISCONNECT 0x98) and ends its session',
      querystring: clientIdQuery, response: okEmpty,
      handler: async (req) => {
        const id = query(req.query).clientId as string;
        if (!(await broker.deleteSession(id))) throw notFound(`no client or session "${id}"`);
        ctx.logger.info({ clientId: id }, 'client kicked through the HTTP API');
        return { code: 1 };
      },
    },
    {
      method: 'GET', url: '/api/v1/client/subscriptions', tag: 'clients', access: 'read',
      summary: "A client's subscriptions (its session's, connected or not)",
      querystring: clientIdQuery, response: ok({ type: 'array', items: subscriptionSchema }),
      handler: async (req) => {
        const id = query(req.query).clientId as string;
        const subs = broker.subscriptions(id);
        if (subs === undefined) throw notFound(`no session for client "${id}"`);
        return { code: 1, data: subs.map((s) => subscriptionView(id, s)) };
      },
    },
    {
      method: 'GET', url: '/api/v1/subscriptions', tag: 'clients', access: 'read', streamed: true,
      summary: "Every session's subscriptions, sorted by client id then topic filter, a page at a time (clientId: one session's; match: filters containing this text)",
      querystring: pageQuery({ clientId: { type: 'string', minLength: 1 }, match: { type: 'string', minLength: 1 } }),
      response: pageSchema(subscriptionSchema),
      handler: async (req, reply) => {
        const q = req.query as PageQuery & { clientId?: string; match?: string };
        // One id per subscription: client id, U+0000 (in neither a client id nor a filter [MQTT-1.5.4-2]), filter; sorted, it orders by client id first.
        const byId = new Map<string, Record<string, unknown>>();
        for (const clientId of q.clientId !== undefined ? [q.clientId] : broker.sessionIds()) {
          for (const s of broker.subscriptions(clientId) ?? []) {
            if (q.match === undefined || s.topicFilter.includes(q.match)) byId.set(`${clientId}\u0000${s.topicFilter}`, subscriptionView(clientId, s));
          }
        }
        return reply.type('application/json').send(pageStream(pageOf([...byId.keys()], q), (id) => byId.get(id)));
      },
    },
    {
      method: 'GET', url: '/api/v1/sessions', tag: 'sessions', access: 'read', streamed: true,
      summary: 'Sessions, connected or not, sorted by client id, a page at a time',
      querystring: pageQuery(), response: pageSchema(sessionSchema),
      handler: async (req, reply) => reply.type('application/json').send(pageStream(pageOf(broker.sessionIds(), req.query as PageQuery), sessionView)),
    },
    {
      method: 'GET', url: '/api/v1/sessions/info', tag: 'sessions', access: 'read',
      summary: 'One session: queue depth, inflight window and subscriptions',
      querystring: clientIdQuery,
      response: ok({ type: 'object', properties: { ...(sessionSchema.properties as object), subscriptionList: { type: 'array', items: subscriptionSchema } } }),
      handler: async (req) => {
        const id = query(req.query).clientId as string;
        const view = sessionView(id);
        const subs = broker.subscriptions(id);
        if (view === undefined || subs === undefined) throw notFound(`no session for client "${id}"`);
        return { code: 1, data: { ...view, subscriptionList: subs.map((s) => subscriptionView(id, s)) } };
      },
    },
    {
      method: 'POST', url: '/api/v1/sessions/delete', tag: 'sessions', access: 'write',
      summary: 'Ends a session (a connected client is disconnected first); a pending will is published',
      querystring: clientIdQuery, response: okEmpty,
      handler: async (req) => {
        const id = query(req.query).clientId as string;
        if (!(await broker.deleteSession(id))) throw notFound(`no session for client "${id}"`);
        ctx.logger.info({ clientId: id }, 'session deleted through the HTTP API');
        return { code: 1 };
      },
    },
    {
      method: 'GET', url: '/api/v1/retained', tag: 'retained', access: 'read', streamed: true,
      summary: 'Retained messages matching a filter (default #), sorted by topic, a page at a time',
      querystring: pageQuery({ filter: { type: 'string', minLength: 1 }, encoding }),
      response: pageSchema(retainedSchema),
      handler: async (req, reply) => {
        const q = req.query as PageQuery & { filter?: string; encoding?: Encoding };
        const filter = q.filter ?? '#';
        const problem = topicFilterProblem(filter);
        if (problem !== undefined) throw badField('querystring.filter', problem);
        const byTopic = new Map(broker.retained(filter).map((m) => [m.topic, m]));
        const enc = q.encoding ?? 'base64';
        return reply.type('application/json').send(pageStream(pageOf([...byTopic.keys()], q), (topic) => {
          const m = byTopic.get(topic);
          if (m === undefined) return undefined;
          return {
            topic, ...encode(m.payload, enc), qos: m.qos, payloadBytes: m.payload.length,
            ...(m.properties?.contentType !== undefined ? { contentType: m.properties.contentType } : {}),
            ...(m.properties?.messageExpiryInterval !== undefined ? { messageExpiryInterval: m.properties.messageExpiryInterval } : {}),
          };
        }));
      },
    },
    {
      method: 'POST', url: '/api/v1/retained/delete', tag: 'retained', access: 'write',
      summary: 'Clears the retained message of a topic (nothing is delivered)',
      querystring: { type: 'object', required: ['topic'], additionalProperties: false, properties: { topic: { type: 'string', minLength: 1 } } },
      response: okEmpty,
      handler: async (req) => {
        const topic = query(req.query).topic as string;
        if (!(await broker.deleteRetained(topic))) throw notFound(`no retained message on "${topic}"`);
        return { code: 1 };
      },
    },
  ];
}
