/**
 * The shape every route is declared in: method, path, who may call it, its schemas (request and
 * response) and its handler. One table drives fastify, `GET /api/v1/endpoints` and the OpenAPI
 * description, so they cannot disagree.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../../observability/logger.js';
import type { Broker } from '../../petrel.js';
import type { ApiAuth } from './auth.js';

export type JsonSchema = Record<string, unknown>;

/**
 * public: anyone (health, ready, login); read: any authenticated caller; write: the admin role;
 * metrics: authenticated unless `metricsAuth` is false.
 */
export type Access = 'public' | 'read' | 'write' | 'metrics';

export interface RouteDef {
  method: 'GET' | 'POST';
  url: string;
  summary: string;
  tag: string;
  access: Access;
  querystring?: JsonSchema;
  body?: JsonSchema;
  /** The 200 answer. For `streamed` routes it documents what the stream writes. */
  response: JsonSchema;
  /** Default application/json. */
  produces?: string;
  /** The answer is written as a stream (fastify does not serialize it). */
  streamed?: boolean;
  /** Login tokens may come as `?access_token=` (EventSource cannot set headers). */
  queryToken?: boolean;
  handler(req: FastifyRequest, reply: FastifyReply): Promise<unknown>;
}

/** What the metrics option must provide: Prometheus text (or any text) and its content type. */
export interface MetricsSource {
  contentType: string;
  render(): Promise<string>;
}

export interface RouteContext {
  broker: Broker;
  auth: ApiAuth;
  logger: Logger;
  metrics: MetricsSource | undefined;
  /** The configuration `GET /api/v1/config` shows (secrets redacted), if any. */
  config: unknown;
  /** Milliseconds between two Server-Sent Events of `GET /api/v1/stats/sse`. */
  sseInterval: number;
  ready: () => boolean;
  /** Wall-clock time the API was created (ms since the epoch). */
  startedAt: number;
  /** Every route, for the endpoint list and the OpenAPI description. */
  routes: readonly RouteDef[];
  /** Server-Sent Event streams open now (closed with the server). */
  sse: Set<{ end(): void }>;
}

/**
 * A refusal with its HTTP status, the result code of the body (101 missing parameter, 102 bad
 * parameter, 103 bad credentials, 105 anything else) and, for a bad input, the field it names.
 */
export class HttpError extends Error {
  constructor(readonly statusCode: number, readonly resultCode: number, message: string, readonly field?: string) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badField = (field: string, problem: string): HttpError => new HttpError(400, 102, `${field}: ${problem}`, field);
export const notFound = (what: string): HttpError => new HttpError(404, 105, what);
