/**
 * Publishing, and subscribing on a client's behalf: mica-mqtt's paths and fields
 * (`/api/v1/mqtt/publish`, `.../subscribe`, `.../unsubscribe`, each with `/batch`), plus MQTT 5
 * properties on publish. Every item of a batch is checked before anything happens.
 */
import type { Subscription } from '../../protocol/index.js';
import { topicFilterProblem } from '../../protocol/index.js';
import { type PublishBody, publishOf } from './payload.js';
import { badField, notFound, type RouteContext, type RouteDef } from './route.js';
import { batchOf, ok, publishItem, subscribeItem, unsubscribeItem } from './schemas.js';

interface SubscribeBody {
  clientId: string;
  topic: string;
  qos?: 0 | 1 | 2;
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

const resultItem = {
  type: 'object',
  properties: { clientId: { type: 'string' }, topic: { type: 'string' }, reasonCode: { type: 'integer' } },
};

export function mqttRoutes(ctx: RouteContext): RouteDef[] {
  const { broker } = ctx;

  const checkFilter = (b: { topic: string }, at: string): void => {
    const problem = topicFilterProblem(b.topic);
    if (problem !== undefined) throw badField(`${at}.topic`, problem);
  };

  /** Items grouped by client (each must have a session), applied in order; one result per item. */
  async function subscribeAll(items: readonly SubscribeBody[], at: (i: number) => string): Promise<{ clientId: string; topic: string; reasonCode: number }[]> {
    items.forEach((b, i) => checkFilter(b, at(i)));
    items.forEach((b, i) => {
      if (!broker.hasSession(b.clientId)) throw notFound(`${at(i)}.clientId: no session for client "${b.clientId}"`);
    });
    const out: { clientId: string; topic: string; reasonCode: number }[] = [];
    for (const b of items) {
      const sub: Subscription = {
        topicFilter: b.topic, qos: b.qos ?? 0, noLocal: b.noLocal ?? false, retainAsPublished: b.retainAsPublished ?? false, retainHandling: b.retainHandling ?? 0,
      };
      const codes = await broker.subscribeFor(b.clientId, [sub]);
      out.push({ clientId: b.clientId, topic: b.topic, reasonCode: codes?.[0] ?? 0x80 });
    }
    return out;
  }

  async function unsubscribeAll(items: readonly { clientId: string; topic: string }[], at: (i: number) => string): Promise<{ clientId: string; topic: string; reasonCode: number }[]> {
    items.forEach((b, i) => checkFilter(b, at(i)));
    items.forEach((b, i) => {
      if (!broker.hasSession(b.clientId)) throw notFound(`${at(i)}.clientId: no session for client "${b.clientId}"`);
    });
    const out: { clientId: string; topic: string; reasonCode: number }[] = [];
    for (const b of items) {
      const removed = await broker.unsubscribeFor(b.clientId, [b.topic]);
      // 0x11 No Subscription Existed, as UNSUBACK would say.
      out.push({ clientId: b.clientId, topic: b.topic, reasonCode: removed?.[0] === true ? 0 : 0x11 });
    }
    return out;
  }

  const results = ok({ type: 'array', items: resultItem });
  return [
    {
      method: 'POST', url: '/api/v1/mqtt/publish', tag: 'mqtt', access: 'write',
      summary: 'Publishes a message (payload encoding plain, hex or base64; MQTT 5 properties optional)',
      body: publishItem,
      response: ok({ type: 'object', properties: { receivers: { type: 'integer' } } }),
      handler: async (req) => {
        const m = publishOf(req.body as PublishBody, 'body');
        return { code: 1, data: { receivers: await broker.publish(m) } };
      },
    },
    {
      method: 'POST', url: '/api/v1/mqtt/publish/batch', tag: 'mqtt', access: 'write',
      summary: 'Publishes several messages, in order; nothing is published when one of them is invalid',
      body: batchOf(publishItem),
      response: ok({ type: 'object', properties: { receivers: { type: 'array', items: { type: 'integer' } } } }),
      handler: async (req) => {
        const messages = (req.body as PublishBody[]).map((b, i) => publishOf(b, `body[${i}]`));
        const receivers: number[] = [];
        for (const m of messages) receivers.push(await broker.publish(m));
        return { code: 1, data: { receivers } };
      },
    },
    {
      method: 'POST', url: '/api/v1/mqtt/subscribe', tag: 'mqtt', access: 'write',
      summary: "Subscribes a client's session to a topic filter (reasonCode: the QoS granted, or a refusal code)",
      body: subscribeItem, response: results,
      handler: async (req) => ({ code: 1, data: await subscribeAll([req.body as SubscribeBody], () => 'body') }),
    },
    {
      method: 'POST', url: '/api/v1/mqtt/subscribe/batch', tag: 'mqtt', access: 'write',
      summary: 'Subscribes clients to topic filters, in order',
      body: batchOf(subscribeItem), response: results,
      handler: async (req) => ({ code: 1, data: await subscribeAll(req.body as SubscribeBody[], (i) => `body[${i}]`) }),
    },
    {
      method: 'POST', url: '/api/v1/mqtt/unsubscribe', tag: 'mqtt', access: 'write',
      summary: "Removes a subscription of a client's session (reasonCode 0, or 17 when there was none)",
      body: unsubscribeItem, response: results,
      handler: async (req) => ({ code: 1, data: await unsubscribeAll([req.body as SubscribeBody], () => 'body') }),
    },
    {
      method: 'POST', url: '/api/v1/mqtt/unsubscribe/batch', tag: 'mqtt', access: 'write',
      summary: 'Removes subscriptions, in order',
      body: batchOf(unsubscribeItem), response: results,
      handler: async (req) => ({ code: 1, data: await unsubscribeAll(req.body as SubscribeBody[], (i) => `body[${i}]`) }),
    },
  ];
}
