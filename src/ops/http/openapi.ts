/**
 * The OpenAPI 3.1 description, generated from the route table: the same schemas fastify
 * validates requests with and serializes answers with (OpenAPI 3.1 takes JSON Schema as is).
 */
import type { JsonSchema, RouteDef } from './route.js';
import { errorSchema } from './schemas.js';

const REFUSALS: Record<string, string> = {
  400: 'invalid input: `field` names the first bad field',
  401: 'no credentials, or wrong ones',
  403: 'the credentials do not allow this (the viewer role only reads)',
  404: 'no such client, session or message',
  429: 'too many failed logins from this address: wait for Retry-After seconds',
};

function parameters(query: JsonSchema | undefined): unknown[] {
  if (query === undefined) return [];
  const props = (query.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((query.required ?? []) as string[]);
  return Object.entries(props).map(([name, schema]) => ({
    name, in: 'query', required: required.has(name), schema,
    ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
  }));
}

function operation(r: RouteDef): Record<string, unknown> {
  const produces = r.produces ?? 'application/json';
  const responses: Record<string, unknown> = { 200: { description: 'success', content: { [produces]: { schema: r.response } } } };
  const refusals = ['400', ...(r.access === 'public' ? [] : ['401', '429']), ...(r.access === 'write' ? ['403'] : []), '404'];
  if (r.url === '/api/v1/login') refusals.push('401', '429');
  for (const code of new Set(refusals)) {
    responses[code] = { description: REFUSALS[code], content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
  }
  const security = r.access === 'public' ? [] : r.access === 'metrics' ? [{}, { bearer: [] }, { basic: [] }] : [{ bearer: [] }, { basic: [] }];
  return {
    summary: r.summary,
    tags: [r.tag],
    operationId: `${r.method.toLowerCase()}${r.url.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
    security,
    parameters: parameters(r.querystring),
    ...(r.body !== undefined ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
    responses,
  };
}

export function openApi(routes: readonly RouteDef[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) (paths[r.url] ??= {})[r.method.toLowerCase()] = operation(r);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Petrel HTTP API',
      version: '1',
      description: 'Every /api/v1 answer is { code: 1, data } (code 1: success); a refusal is { code, error, message, field? } '
        + 'with result code 101 (missing parameter), 102 (bad parameter), 103 (bad credentials) or 105 (anything else).',
    },
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API key, or a token from POST /api/v1/login' },
        basic: { type: 'http', scheme: 'basic', description: 'a configured user' },
      },
    },
    security: [{ bearer: [] }, { basic: [] }],
    paths,
  };
}
