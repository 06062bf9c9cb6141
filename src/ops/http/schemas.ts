/** JSON schemas shared by the routes (request and response), also the OpenAPI components. */
import type { JsonSchema } from './route.js';

export const int = (minimum: number, maximum: number): JsonSchema => ({ type: 'integer', minimum, maximum });
const str: JsonSchema = { type: 'string' };
const bool: JsonSchema = { type: 'boolean' };
const qos: JsonSchema = { type: 'integer', enum: [0, 1, 2] };
const clientId: JsonSchema = { type: 'string', minLength: 1, maxLength: 65535 };

/** `{ code: 1, data }`: every /api/v1 answer (mica-mqtt's envelope; code 1 is success). */
export function ok(data: JsonSchema): JsonSchema {
  return { type: 'object', required: ['code', 'data'], properties: { code: { type: 'integer', enum: [1] }, data } };
}

export const okEmpty: JsonSchema = { type: 'object', required: ['code'], properties: { code: { type: 'integer', enum: [1] } } };

/** A refusal: result code, HTTP reason phrase, message and, for bad input, the field. */
export const errorSchema: JsonSchema = {
  type: 'object',
  required: ['code', 'error', 'message'],
  properties: { code: { type: 'integer' }, error: str, message: str, field: str },
};

export const clientIdQuery: JsonSchema = {
  type: 'object', required: ['clientId'], additionalProperties: false, properties: { clientId },
};

export const pageQuery = (extra: Record<string, JsonSchema> = {}): JsonSchema => ({
  type: 'object',
  additionalProperties: false,
  properties: {
    _page: { ...int(1, 1_000_000_000), description: 'page number, from 1 (default 1)' },
    _limit: { ...int(1, 100_000), description: 'page size (default 10000)' },
    after: { type: 'string', description: 'cursor: only items whose id sorts after this one (the `next` of the previous page)' },
    ...extra,
  },
});

/** A page of `item`: mica-mqtt's fields, plus `next`, the cursor of the following page. */
export const pageOf = (item: JsonSchema): JsonSchema => ok({
  type: 'object',
  required: ['pageNumber', 'pageSize', 'totalRow', 'list'],
  properties: {
    pageNumber: { type: 'integer' }, pageSize: { type: 'integer' }, totalRow: { type: 'integer' },
    next: { type: ['string', 'null'] }, list: { type: 'array', items: item },
  },
});

export const encoding: JsonSchema = { type: 'string', enum: ['plain', 'hex', 'base64'] };

const userProperties: JsonSchema = {
  description: 'a mapping of names to values, or a list of [name, value] pairs (names may repeat)',
  anyOf: [
    { type: 'object', additionalProperties: str },
    { type: 'array', maxItems: 1000, items: { type: 'array', minItems: 2, maxItems: 2, items: str } },
  ],
};

/** MQTT 5 PUBLISH properties a message can carry. */
export const publishProperties: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    payloadFormatIndicator: bool,
    messageExpiryInterval: int(0, 0xffffffff),
    contentType: str,
    responseTopic: { type: 'string', minLength: 1 },
    correlationData: str,
    correlationDataEncoding: encoding,
    userProperties,
  },
};

export const publishItem: JsonSchema = {
  type: 'object',
  required: ['topic', 'payload'],
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1 },
    payload: str,
    encoding,
    qos,
    retain: bool,
    clientId: { ...str, description: 'accepted for mica-mqtt requests and not used' },
    properties: publishProperties,
  },
};

export const subscribeItem: JsonSchema = {
  type: 'object',
  required: ['clientId', 'topic'],
  additionalProperties: false,
  properties: {
    clientId, topic: { type: 'string', minLength: 1 }, qos, noLocal: bool, retainAsPublished: bool, retainHandling: { type: 'integer', enum: [0, 1, 2] },
  },
};

export const unsubscribeItem: JsonSchema = {
  type: 'object', required: ['clientId', 'topic'], additionalProperties: false, properties: { clientId, topic: { type: 'string', minLength: 1 } },
};

export const batchOf = (item: JsonSchema): JsonSchema => ({ type: 'array', minItems: 1, maxItems: 1000, items: item });

const nullableInt: JsonSchema = { type: ['integer', 'null'] };

export const clientSchema: JsonSchema = {
  type: 'object',
  properties: {
    clientId: str, username: { type: ['string', 'null'] }, connected: bool, protoName: str, protoVer: { type: 'integer' },
    ipAddress: { type: ['string', 'null'] }, port: nullableInt, listener: { type: ['string', 'null'] }, transport: { type: ['string', 'null'] },
    keepalive: { type: 'integer' }, cleanStart: bool, createdAt: { type: 'integer' }, connectedAt: { type: 'integer' },
    subscriptions: { type: 'integer' }, queued: { type: 'integer' }, inflight: { type: 'integer' }, expiryInterval: { type: 'integer' },
  },
};

export const subscriptionSchema: JsonSchema = {
  type: 'object',
  properties: {
    clientId: str, topicFilter: str, mqttQoS: { type: 'integer' }, noLocal: bool, retainAsPublished: bool,
    retainHandling: { type: 'integer' }, subscriptionIdentifier: nullableInt,
  },
};

export const sessionSchema: JsonSchema = {
  type: 'object',
  properties: {
    clientId: str, connected: bool, expiryInterval: { type: 'integer' },
    expiresInSeconds: { ...nullableInt, description: 'seconds until an offline session expires; null while connected or never' },
    subscriptions: { type: 'integer' }, queued: { type: 'integer' }, inflight: { type: 'integer' },
  },
};

export const retainedSchema: JsonSchema = {
  type: 'object',
  properties: {
    topic: str, payload: str, encoding, qos: { type: 'integer' }, payloadBytes: { type: 'integer' },
    contentType: str, messageExpiryInterval: { type: 'integer' },
  },
};

export const statsSchema: JsonSchema = {
  type: 'object',
  properties: {
    time: { type: 'integer' }, uptime: { type: 'integer' },
    connections: { type: 'integer' }, connecting: { type: 'integer' }, sessions: { type: 'integer' }, subscriptions: { type: 'integer' },
    retained: { type: 'integer' }, retainedBytes: { type: 'integer' },
    messagesReceived: { type: 'integer' }, messagesRouted: { type: 'integer' }, messagesDropped: { type: 'integer' },
    connectionsAccepted: { type: 'integer' },
    memory: { type: 'object', properties: { rss: { type: 'integer' }, heapUsed: { type: 'integer' } } },
  },
};
