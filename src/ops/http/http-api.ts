/**
 * The HTTP API of a broker (fastify): one port, JSON with a schema for every route, auth on
 * every route but health, readiness and (by option) metrics. `createHttpApi(broker, options)`
 * builds it; `listen()` binds the port (0: a free one; portFallback: the next ones when taken).
 *
 * It uses the broker's public methods only, and nothing runs per MQTT message: every answer is
 * computed when asked for.
 */
import fastifyStatic from '@fastify/static';
import { fastify, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { type Logger, silentLogger } from '../../observability/logger.js';
import type { Broker } from '../../petrel.js';
import { ApiAuth, type AuthOptions } from './auth.js';
import { type Access, HttpError, type MetricsSource, type RouteContext, type RouteDef } from './route.js';
import { clientRoutes } from './routes-clients.js';
import { mqttRoutes } from './routes-mqtt.js';
import { systemRoutes } from './routes-system.js';

export const DEFAULT_HTTP_PORT = 18083;

export interface HttpApiOptions {
  /** Default 18083; 0 picks a free port. */
  port?: number;
  /** Default 0.0.0.0. */
  host?: string;
  /** When `port` is taken, try up to this many following ports. Default 0. */
  portFallback?: number;
  /** API keys, users and the failed-login limit; or a ready ApiAuth. Without keys or users nobody gets in. */
  auth?: AuthOptions | ApiAuth;
  /** What `GET /metrics` serves; without it the route answers 404. */
  metrics?: MetricsSource;
  /** Whether `GET /metrics` needs credentials. Default true. */
  metricsAuth?: boolean;
  /** The configuration `GET /api/v1/config` shows, secrets redacted. */
  config?: unknown;
  logger?: Logger;
  /** Milliseconds between two events of `GET /api/v1/stats/sse`. Default 1000. */
  sseInterval?: number;
  /** Readiness for `GET /ready`. Default: the broker is not closed. */
  ready?: () => boolean;
  /** Largest request body in bytes. Default: four times the broker's maxPacketSize (at least 1 MiB). */
  bodyLimit?: number;
  /**
   * A directory of static files (the built web dashboard) served at `/dashboard/` without
   * credentials (`/` redirects there); the data it shows needs them.
   */
  dashboard?: string;
}

export interface HttpApi {
  /** Binds the port; resolves with the address bound. */
  listen(): Promise<{ host: string; port: number }>;
  /** Ends open event streams and closes the server. */
  close(): Promise<void>;
  /** The bound address once listening. */
  readonly address: { host: string; port: number } | undefined;
  /** The fastify instance (tests `inject` requests; more routes or static files can be registered before listen). */
  readonly app: FastifyInstance;
  readonly auth: ApiAuth;
}

const PHRASES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large',
  415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

interface RouteConfig {
  access?: Access;
  queryToken?: boolean;
}

/** The field an ajv error names, as `body.topic`, `body[2].qos` or `querystring.clientId`. */
function fieldOf(part: string, e: { instancePath: string; params: Record<string, unknown> }): string {
  let field = part + e.instancePath.split('/').slice(1).map((s) => (/^[0-9]+$/.test(s) ? `[${s}]` : `.${s}`)).join('');
  const extra = e.params.missingProperty ?? e.params.additionalProperty;
  if (typeof extra === 'string') field += `.${extra}`;
  return field;
}

export function createHttpApi(broker: Broker, options: HttpApiOptions = {}): HttpApi {
  const logger = options.logger ?? silentLogger;
  const auth = options.auth instanceof ApiAuth ? options.auth : new ApiAuth(options.auth);
  const metricsAuth = options.metricsAuth ?? true;
  const app = fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? Math.max(1024 * 1024, broker.maxPacketSize * 4),
    // Unknown fields are refused (400 naming them), not silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  });
  const routes: RouteDef[] = [];
  const ctx: RouteContext = {
    broker, auth, logger, metrics: options.metrics, config: options.config, sseInterval: options.sseInterval ?? 1000,
    ready: options.ready ?? (() => !broker.closed), startedAt: Date.now(), routes, sse: new Set(),
  };
  routes.push(...mqttRoutes(ctx), ...clientRoutes(ctx), ...systemRoutes(ctx));

  // JSON with prototype-poisoning protection; an empty body is no body (a POST whose parameters
  // are in the query often still says application/json). mica-mqtt's examples send JSON with
  // curl -d, which labels it application/x-www-form-urlencoded: read as JSON too.
  const json = app.getDefaultJsonParser('error', 'error');
  const parseJson = (req: FastifyRequest, body: string, done: (err: Error | null, body?: unknown) => void): void => {
    if (body === '') done(null, undefined);
    else json(req, body, done);
  };
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'application/x-www-form-urlencoded'], { parseAs: 'string' }, parseJson);

  app.addHook('onRequest', async (req, reply) => {
    const config = (req.routeOptions.config ?? {}) as RouteConfig;
    const access = config.access ?? 'read';
    if (access === 'public' || (access === 'metrics' && !metricsAuth)) return;
    const address = req.ip;
    const wait = auth.retryAfter(address);
    if (wait !== undefined) {
      void reply.header('retry-after', String(wait));
      throw new HttpError(429, 105, 'too many failed logins from this address; try again later');
    }
    let header = req.headers.authorization;
    const token = config.queryToken === true ? (req.query as Record<string, unknown>).access_token : undefined;
    if (header === undefined && typeof token === 'string') header = `Bearer ${token}`;
    if (header === undefined) {
      void reply.header('www-authenticate', 'Bearer realm="petrel", Basic realm="petrel"');
      throw new HttpError(401, 103, 'credentials required: Authorization: Bearer <API key or token>, or Basic');
    }
    const principal = await auth.check(header);
    if (principal === undefined) {
      auth.failed(address);
      logger.warn({ remote: address, method: req.method, url: req.url }, 'HTTP API credentials refused');
      void reply.header('www-authenticate', 'Bearer realm="petrel", Basic realm="petrel"');
      throw new HttpError(401, 103, 'wrong credentials');
    }
    if (access === 'write' && principal.role !== 'admin') throw new HttpError(403, 105, `${principal.name} may only read (role ${principal.role})`);
  });

  app.addHook('onResponse', async (req, reply) => {
    logger.debug({ method: req.method, url: req.routeOptions.url ?? req.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime), remote: req.ip }, 'http request');
  });

  app.addHook('preClose', async () => {
    for (const s of [...ctx.sse]) s.end();
  });

  app.setErrorHandler(async (err: FastifyError | HttpError, req, reply) => {
    if (err instanceof HttpError) {
      return reply.code(err.statusCode).send({
        code: err.resultCode, error: PHRASES[err.statusCode] ?? 'Error', message: err.message, ...(err.field !== undefined ? { field: err.field } : {}),
      });
    }
    const first = err.validation?.[0];
    if (first !== undefined) {
      const field = fieldOf(err.validationContext ?? 'body', first as unknown as { instancePath: string; params: Record<string, unknown> });
      const missing = first.keyword === 'required';
      const problem = first.keyword === 'additionalProperties' ? 'not a known field' : missing ? 'required' : (first.message ?? 'invalid');
      return reply.code(400).send({ code: missing ? 101 : 102, error: 'Bad Request', message: `${field}: ${problem}`, field });
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) logger.error({ err, method: req.method, url: req.url }, 'HTTP API request failed');
    return reply.code(status).send({
      code: status === 400 ? 102 : 105, error: PHRASES[status] ?? 'Error', message: status >= 500 ? 'internal error' : err.message,
      ...(status === 400 ? { field: 'body' } : {}),
    });
  });

  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ code: 105, error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}` }));

  // Refusals (errorSchema) are documented in the OpenAPI description; they are small objects the
  // error handler builds, serialized without a compiled serializer (one fewer per route and status).
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      config: { access: r.access, queryToken: r.queryToken ?? false },
      schema: {
        ...(r.querystring !== undefined ? { querystring: r.querystring } : {}),
        ...(r.body !== undefined ? { body: r.body } : {}),
        ...(r.streamed === true ? {} : { response: { 200: r.response } }),
      },
      handler: r.handler,
    });
  }

  const dashboard = options.dashboard;
  if (dashboard !== undefined) {
    void app.register(async (scope) => {
      // The files are public; every route the static plugin adds here is marked so for the auth hook.
      scope.addHook('onRoute', (route) => {
        route.config = { ...(route.config as RouteConfig | undefined), access: 'public' };
      });
      await scope.register(fastifyStatic, { root: dashboard, prefix: '/dashboard', redirect: true, cacheControl: false });
      scope.get('/', async (_req, reply) => reply.redirect('/dashboard/'));
    });
  }

  let address: { host: string; port: number } | undefined;
  return {
    app,
    auth,
    get address() {
      return address;
    },
    async listen() {
      const host = options.host ?? '0.0.0.0';
      const first = options.port ?? DEFAULT_HTTP_PORT;
      const tries = first === 0 ? 1 : 1 + (options.portFallback ?? 0);
      for (let i = 0; ; i++) {
        try {
          await app.listen({ port: first + i, host });
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || i + 1 >= tries) throw err;
        }
      }
      const bound = app.server.address();
      address = { host, port: typeof bound === 'object' && bound !== null ? bound.port : first };
      return address;
    },
    async close() {
      await app.close();
      address = undefined;
    },
  };
}
