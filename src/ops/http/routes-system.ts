/**
 * The API about the broker: endpoint list, statistics (also as Server-Sent Events), listeners,
 * the configuration (secrets redacted), health and readiness, Prometheus metrics, login and the
 * OpenAPI description.
 */
import { HttpError, notFound, type RouteContext, type RouteDef } from './route.js';
import { openApi } from './openapi.js';
import { redact } from './redact.js';
import { ok, okEmpty, statsSchema } from './schemas.js';

const status = { type: 'object', required: ['status'], properties: { status: { type: 'string' } } };

export function systemRoutes(ctx: RouteContext): RouteDef[] {
  const { broker } = ctx;
  const stats = (): Record<string, unknown> => {
    const now = Date.now();
    const mem = process.memoryUsage();
    return {
      time: now, uptime: Math.floor((now - ctx.startedAt) / 1000), ...broker.counts(), ...broker.stats,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed },
    };
  };
  return [
    {
      method: 'GET', url: '/api/v1/endpoints', tag: 'system', access: 'read', summary: 'Every route of this API',
      response: ok({ type: 'array', items: { type: 'object', properties: { method: { type: 'string' }, path: { type: 'string' }, summary: { type: 'string' } } } }),
      handler: async () => ({ code: 1, data: ctx.routes.map((r) => ({ method: r.method, path: r.url, summary: r.summary })) }),
    },
    {
      method: 'GET', url: '/api/v1/stats', tag: 'system', access: 'read', summary: 'Counts and counters of the broker',
      response: ok(statsSchema),
      handler: async () => ({ code: 1, data: stats() }),
    },
    {
      method: 'GET', url: '/api/v1/stats/sse', tag: 'system', access: 'read', streamed: true, queryToken: true, produces: 'text/event-stream',
      summary: 'The statistics as Server-Sent Events ("stats"), one now and one per interval; a login token may come as ?access_token=',
      querystring: { type: 'object', additionalProperties: false, properties: { access_token: { type: 'string' } } },
      response: statsSchema,
      handler: async (req, reply) => {
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        const send = (): void => {
          res.write(`event: stats\ndata: ${JSON.stringify(stats())}\n\n`);
        };
        const timer = setInterval(send, ctx.sseInterval);
        timer.unref();
        const stream = {
          end: (): void => {
            clearInterval(timer);
            ctx.sse.delete(stream);
            res.end();
          },
        };
        ctx.sse.add(stream);
        req.raw.once('close', stream.end);
        send();
      },
    },
    {
      method: 'GET', url: '/api/v1/listeners', tag: 'system', access: 'read',
      summary: 'MQTT listeners and the clients connected through each (ws and wss: the WebSocket path too)',
      response: ok({
        type: 'array',
        items: {
          type: 'object',
          properties: {
            name: { type: 'string' }, type: { type: 'string' }, host: { type: 'string' }, port: { type: 'integer' }, path: { type: 'string' },
            connections: { type: 'integer' },
          },
        },
      }),
      handler: async () => ({
        code: 1,
        data: broker.listeners.map((l) => ({
          name: l.name, type: l.type, host: l.host, port: l.port, ...(l.path !== undefined ? { path: l.path } : {}), connections: broker.connectionsOn(l.name),
        })),
      }),
    },
    {
      method: 'GET', url: '/api/v1/config', tag: 'system', access: 'read', summary: 'The configuration in use, secrets redacted',
      response: ok({ type: 'object', additionalProperties: true }),
      handler: async () => {
        if (ctx.config === undefined) throw notFound('no configuration was given to the HTTP API');
        return { code: 1, data: redact(ctx.config) };
      },
    },
    {
      method: 'POST', url: '/api/v1/login', tag: 'auth', access: 'public',
      summary: 'Exchanges a username and password for a session token (use it as Authorization: Bearer <token>)',
      body: {
        type: 'object', required: ['username', 'password'], additionalProperties: false,
        properties: { username: { type: 'string', minLength: 1 }, password: { type: 'string' } },
      },
      response: ok({ type: 'object', properties: { token: { type: 'string' }, expiresAt: { type: 'integer' }, role: { type: 'string' } } }),
      handler: async (req, reply) => {
        const address = req.ip;
        const wait = ctx.auth.retryAfter(address);
        if (wait !== undefined) {
          void reply.header('retry-after', String(wait));
          throw new HttpError(429, 105, 'too many failed logins from this address; try again later');
        }
        const { username, password } = req.body as { username: string; password: string };
        const principal = await ctx.auth.login(username, password);
        if (principal === undefined) {
          ctx.auth.failed(address);
          ctx.logger.warn({ remote: address, username }, 'HTTP API login refused');
          throw new HttpError(401, 103, 'wrong username or password');
        }
        return { code: 1, data: { ...ctx.auth.issueToken(principal), role: principal.role } };
      },
    },
    {
      method: 'POST', url: '/api/v1/logout', tag: 'auth', access: 'read', summary: 'Ends the session token this request carries',
      response: okEmpty,
      handler: async (req) => {
        const header = req.headers.authorization ?? '';
        ctx.auth.revokeToken(header.replace(/^bearer\s+/i, ''));
        return { code: 1 };
      },
    },
    {
      method: 'GET', url: '/api/openapi.json', tag: 'system', access: 'read', summary: 'This API described in OpenAPI 3.1',
      response: { type: 'object', additionalProperties: true },
      handler: async () => openApi(ctx.routes),
    },
    {
      method: 'GET', url: '/health', tag: 'health', access: 'public', summary: 'Liveness: the process answers', response: status,
      handler: async () => ({ status: 'ok' }),
    },
    {
      method: 'GET', url: '/ready', tag: 'health', access: 'public', summary: 'Readiness: 200 while the broker serves clients, else 503', response: status,
      handler: async (_req, reply) => {
        if (ctx.ready()) return { status: 'ready' };
        return reply.code(503).send({ status: 'not ready' });
      },
    },
    {
      method: 'GET', url: '/metrics', tag: 'health', access: 'metrics', produces: 'text/plain', streamed: true,
      summary: 'Prometheus metrics (authenticated unless metricsAuth is false; 404 without a metrics source)',
      response: { type: 'string' },
      handler: async (_req, reply) => {
        const m = ctx.metrics;
        if (m === undefined) throw notFound('metrics are not enabled');
        return reply.type(m.contentType).send(await m.render());
      },
    },
  ];
}
