/**
 * The broker's hooks and interceptors, as the handlers call them: each user function wrapped
 * once (isolation and time limit through UserCode), its answer normalised to what the handler
 * needs. Hooks can be replaced and interceptors added at run time (plugins do); the handlers read
 * the current wrapper on every call, and an empty pipeline is `undefined`, so nothing is paid for
 * what is not used.
 */
import { Buffer } from 'node:buffer';
import {
  AllowedReasonCodes, type ConnectPacket, fromV3ConnackCode, matches, PacketType, type Properties, type QoS, ReasonCode,
  type Subscription, topicNameProblem,
} from '../protocol/index.js';
import type { Connection } from './connection.js';
import type { ClientInfo } from './events.js';
import type {
  AuthenticateHook, AuthorizeDeliveryHook, AuthorizePublishHook, AuthorizeSubscribeHook, BrokerHooks, ClientAcl, ClientContext,
  DeliveryInterceptor, HookName, InterceptedMessage, InterceptOptions, InterceptorKind, Interceptors,
  PublishContext, PublishInterceptor,
} from './hooks.js';
import { createMessage, type Message } from './message.js';
import type { UserCode } from './user-code.js';
import type { Clock } from '../session/clock.js';
import type { HookKind, LatencyHistogram } from './counters.js';

/** What authenticate decided: a CONNACK code, and for an accepted client what it changes. */
export interface AuthVerdict {
  code: number;
  username?: string | undefined;
  clientId?: string | undefined;
  acl?: ClientAcl | undefined;
  data?: unknown;
}

/** A publish answer: a reason code, or the changes of an accepting answer. */
export type PublishVerdict = number | PublishChange;
export interface PublishChange {
  topic?: string;
  payload?: Buffer;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
}

const ACCEPTED: AuthVerdict = { code: ReasonCode.Success };
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isQos = (v: unknown): v is QoS => v === 0 || v === 1 || v === 2;
const isFilterList = (v: unknown): v is readonly string[] => Array.isArray(v) && v.every((f) => typeof f === 'string');

/** A CONNACK code valid for every version: 0, a 5.0 failure code, or a 3.1.1 return code 1 to 5 (mapped). */
function connackCode(v: unknown): number | undefined {
  if (v === true || v === 0) return ReasonCode.Success;
  if (v === false) return ReasonCode.BadUserNameOrPassword;
  if (typeof v !== 'number' || !Number.isInteger(v)) return undefined;
  if (v >= 0x80 && (AllowedReasonCodes[PacketType.Connack] as ReadonlySet<number>).has(v)) return v;
  if (v >= 1 && v <= 5) return fromV3ConnackCode(v);
  return undefined;
}

/** Normalises an authenticate answer; undefined when it is not one. */
function authVerdict(v: unknown): AuthVerdict | undefined {
  if (!isObject(v)) {
    const code = connackCode(v);
    return code === undefined ? undefined : code === ReasonCode.Success ? ACCEPTED : { code };
  }
  const code = v.reasonCode === undefined ? ReasonCode.Success : connackCode(v.reasonCode);
  if (code === undefined) return undefined;
  if (v.username !== undefined && typeof v.username !== 'string') return undefined;
  if (v.clientId !== undefined && (typeof v.clientId !== 'string' || v.clientId === '')) return undefined;
  const acl = v.acl;
  if (acl !== undefined && (!isObject(acl) || (acl.publish !== undefined && !isFilterList(acl.publish))
    || (acl.subscribe !== undefined && !isFilterList(acl.subscribe)))) return undefined;
  return { code, username: v.username, clientId: v.clientId, acl: acl as ClientAcl | undefined, data: v.data };
}

/** A PUBACK / PUBREC reason code: 0 or a failure code those packets can carry. */
function pubackCode(v: unknown): number | undefined {
  if (v === true || v === 0) return ReasonCode.Success;
  if (v === false) return ReasonCode.NotAuthorized;
  if (typeof v === 'number' && v >= 0x80 && (AllowedReasonCodes[PacketType.Puback] as ReadonlySet<number>).has(v)) return v;
  return undefined;
}

function publishVerdict(v: unknown): PublishVerdict | undefined {
  if (!isObject(v)) return pubackCode(v);
  if (v.reasonCode !== undefined) {
    const code = pubackCode(v.reasonCode);
    if (code === undefined) return undefined;
    if (code !== ReasonCode.Success) return code;
  }
  const change: PublishChange = {};
  if (v.topic !== undefined) {
    if (typeof v.topic !== 'string' || topicNameProblem(v.topic) !== undefined) return undefined;
    change.topic = v.topic;
  }
  if (v.payload !== undefined) {
    if (typeof v.payload === 'string') change.payload = Buffer.from(v.payload);
    else if (v.payload instanceof Uint8Array) change.payload = Buffer.isBuffer(v.payload) ? v.payload : Buffer.from(v.payload);
    else return undefined;
  }
  if (v.qos !== undefined) {
    if (!isQos(v.qos)) return undefined;
    change.qos = v.qos;
  }
  if (v.retain !== undefined) {
    if (typeof v.retain !== 'boolean') return undefined;
    change.retain = v.retain;
  }
  if (v.properties !== undefined) {
    if (!isObject(v.properties)) return undefined;
    change.properties = v.properties as Properties;
  }
  return change;
}

/** A subscribe answer as the most QoS granted (0 to 2) or a SUBACK failure code (0x80 and up). */
function subscribeVerdict(v: unknown): number | undefined {
  if (v === true) return 2;
  if (v === false) return ReasonCode.NotAuthorized;
  if (typeof v === 'number') {
    if (isQos(v)) return v;
    return v >= 0x80 && (AllowedReasonCodes[PacketType.Suback] as ReadonlySet<number>).has(v) ? v : undefined;
  }
  if (!isObject(v)) return undefined;
  if (v.reasonCode !== undefined) {
    if (typeof v.reasonCode !== 'number') return undefined;
    if (v.reasonCode >= 0x80) return (AllowedReasonCodes[PacketType.Suback] as ReadonlySet<number>).has(v.reasonCode) ? v.reasonCode : undefined;
    if (!isQos(v.reasonCode)) return undefined;
    return v.reasonCode;
  }
  if (v.qos !== undefined) return isQos(v.qos) ? v.qos : undefined;
  return 2;
}

function interceptedOf(v: unknown): InterceptedMessage | null | undefined {
  if (v === null) return null;
  if (!isObject(v)) return undefined;
  if (typeof v.topic !== 'string' || topicNameProblem(v.topic) !== undefined) return undefined;
  if (!Buffer.isBuffer(v.payload) || !isQos(v.qos) || typeof v.retain !== 'boolean') return undefined;
  if (v.properties !== undefined && !isObject(v.properties)) return undefined;
  return v as unknown as InterceptedMessage;
}

/** Whether `filter` asks for nothing outside `allowed` (every topic it matches, `allowed` matches). */
export function filterCovers(allowed: string, filter: string): boolean {
  const a = allowed.split('/');
  const f = filter.split('/');
  for (let i = 0; i < f.length; i++) {
    const al = a[i];
    if (al === undefined) return false;
    if (al === '#') return !(i === 0 && (f[0] as string).startsWith('$'));
    const fl = f[i] as string;
    if (fl === '#') return false;
    if (al === '+') {
      if (i === 0 && fl.startsWith('$')) return false;
      continue;
    }
    if (fl === '+' || fl !== al) return false;
  }
  return a.length === f.length || (a.length === f.length + 1 && a[f.length] === '#');
}

/** Whether a client with `acl` may publish to `topic`. */
export function aclAllowsPublish(acl: ClientAcl, topic: string): boolean {
  const list = acl.publish;
  if (list === undefined) return true;
  for (const f of list) if (matches(f, topic)) return true;
  return false;
}

/** Whether a client with `acl` may subscribe to `filter` ($share/{group}/ already stripped). */
export function aclAllowsSubscribe(acl: ClientAcl, filter: string): boolean {
  const list = acl.subscribe;
  if (list === undefined) return true;
  for (const f of list) if (filterCovers(f, filter)) return true;
  return false;
}

interface Entry<F> {
  fn: F;
  order: number;
  seq: number;
  name: string;
}

export class Extensions {
  readonly #userCode: UserCode;
  readonly #clock: Clock;
  /** Where the latency of each kind of user code is recorded (counters.ts). */
  readonly #latency: Readonly<Record<HookKind, LatencyHistogram>>;
  readonly #hooks: BrokerHooks = {};
  readonly #interceptors: { [K in InterceptorKind]: Entry<Interceptors[K]>[] } = { publish: [], delivery: [], will: [] };
  #seq = 0;

  /** Wrapped hooks; undefined when not set, so a handler pays nothing for a missing hook. */
  authenticate: ((c: Connection, p: ConnectPacket, clientId: string) => AuthVerdict | Promise<AuthVerdict>) | undefined;
  authorizePublish: ((ctx: PublishContext) => PublishVerdict | Promise<PublishVerdict>) | undefined;
  /** The most QoS granted (0 to 2) or the SUBACK failure code. */
  authorizeSubscribe: ((c: Connection, s: Subscription) => number | Promise<number>) | undefined;
  /** Per receiver: the message to deliver (maybe another one for this receiver) or undefined to skip it. */
  deliveryCheck: ((clientId: string, client: ClientInfo | undefined, msg: Message) => Message | undefined) | undefined;
  /** The inbound pipeline; undefined when empty. */
  interceptPublish: ((msg: InterceptedMessage, client: ClientContext | undefined) => InterceptedMessage | null | Promise<InterceptedMessage | null>) | undefined;
  interceptWill: ((msg: InterceptedMessage, client: ClientContext | undefined) => InterceptedMessage | null | Promise<InterceptedMessage | null>) | undefined;

  constructor(userCode: UserCode, clock: Clock, hooks: BrokerHooks, latency: Readonly<Record<HookKind, LatencyHistogram>>) {
    this.#userCode = userCode;
    this.#clock = clock;
    this.#latency = latency;
    for (const name of ['authenticate', 'authorizePublish', 'authorizeSubscribe', 'authorizeDelivery'] as const) {
      const fn = hooks[name];
      if (fn !== undefined) this.setHook(name, fn as never);
    }
  }

  /** The hook set under `name` now (to chain to it from a replacement). */
  getHook<N extends HookName>(name: N): BrokerHooks[N] {
    return this.#hooks[name];
  }

  /** Sets (or with undefined, removes) a hook; later calls use it at once. */
  setHook<N extends HookName>(name: N, fn: BrokerHooks[N] | undefined): void {
    if (fn !== undefined && typeof fn !== 'function') throw new TypeError(`hook ${name} must be a function`);
    this.#hooks[name] = fn;
    const uc = this.#userCode;
    const latency = this.#latency;
    const { NotAuthorized: denied, UnspecifiedError: failed } = ReasonCode;
    switch (name) {
      case 'authenticate': {
        const auth = fn as AuthenticateHook | undefined;
        const deniedV: AuthVerdict = { code: denied };
        const failedV: AuthVerdict = { code: failed };
        this.authenticate = auth === undefined ? undefined : (c, p, clientId) => uc.run('authenticate', clientId, auth, {
          clientId, username: p.username, password: p.password, protocolVersion: p.protocolVersion, remoteAddress: c.remoteAddress,
          connection: c.meta,
        }, authVerdict, deniedV, failedV, latency.authenticate);
        break;
      }
      case 'authorizePublish': {
        const pub = fn as AuthorizePublishHook | undefined;
        this.authorizePublish = pub === undefined ? undefined : (call) => uc.run('authorizePublish', call.clientId, pub, call, publishVerdict, denied, failed, latency.authorizePublish);
        break;
      }
      case 'authorizeSubscribe': {
        const sub = fn as AuthorizeSubscribeHook | undefined;
        this.authorizeSubscribe = sub === undefined ? undefined : (c, s) => {
          const info = c.info as ClientInfo;
          return uc.run('authorizeSubscribe', info.clientId, sub, {
            clientId: info.clientId, username: info.username, protocolVersion: info.protocolVersion, remoteAddress: info.remoteAddress,
            connection: info.connection, topicFilter: s.topicFilter, qos: s.qos, client: info,
          }, subscribeVerdict, denied, failed, latency.authorizeSubscribe);
        };
        break;
      }
      case 'authorizeDelivery':
        this.#rebuildDelivery();
        break;
    }
  }

  /** Adds an interceptor; returns a function that removes it. */
  intercept<K extends InterceptorKind>(kind: K, fn: Interceptors[K], options: InterceptOptions = {}): () => void {
    if (typeof fn !== 'function') throw new TypeError(`a ${kind} interceptor must be a function`);
    const order = options.order ?? 0;
    if (typeof order !== 'number' || !Number.isFinite(order)) throw new TypeError('interceptor order must be a finite number');
    const list = this.#interceptors[kind] as Entry<Interceptors[K]>[];
    const entry: Entry<Interceptors[K]> = { fn, order, seq: this.#seq++, name: options.name ?? `${kind} interceptor` };
    list.push(entry);
    list.sort((a, b) => a.order - b.order || a.seq - b.seq);
    this.#rebuild(kind);
    return () => {
      const at = list.indexOf(entry);
      if (at >= 0) {
        list.splice(at, 1);
        this.#rebuild(kind);
      }
    };
  }

  #rebuild(kind: InterceptorKind): void {
    if (kind === 'delivery') return this.#rebuildDelivery();
    const list = this.#interceptors[kind] as Entry<PublishInterceptor>[];
    const latency = kind === 'publish' ? this.#latency.publishInterceptor : this.#latency.willInterceptor;
    const run = list.length === 0 ? undefined
      : (msg: InterceptedMessage, client: ClientContext | undefined) => this.#pipeline(list, 0, msg, client, latency);
    if (kind === 'publish') this.interceptPublish = run;
    else this.interceptWill = run;
  }

  /** Runs `list` from `i` on: each answer feeds the next; null stops (dropped); a failure drops. */
  #pipeline(list: readonly Entry<PublishInterceptor>[], from: number, msg: InterceptedMessage, client: ClientContext | undefined, latency: LatencyHistogram):
    InterceptedMessage | null | Promise<InterceptedMessage | null> {
    let current: InterceptedMessage = msg;
    const clientId = client?.clientId;
    for (let i = from; i < list.length; i++) {
      const entry = list[i] as Entry<PublishInterceptor>;
      const r = this.#userCode.run(entry.name, clientId, (m: InterceptedMessage) => entry.fn(m, client), current, interceptedOf, null, null, latency);
      if (r instanceof Promise) {
        return r.then((settled) => (settled === null ? null : this.#pipeline(list, i + 1, settled, client, latency)));
      }
      if (r === null) return null;
      current = r;
    }
    return current;
  }

  #rebuildDelivery(): void {
    const authorize = this.#hooks.authorizeDelivery as AuthorizeDeliveryHook | undefined;
    const list = this.#interceptors.delivery as Entry<DeliveryInterceptor>[];
    if (authorize === undefined && list.length === 0) {
      this.deliveryCheck = undefined;
      return;
    }
    const uc = this.#userCode;
    const latency = this.#latency.delivery;
    const check = (clientId: string, client: ClientInfo | undefined, msg: Message): Message | undefined => {
      if (authorize !== undefined) {
        let ok: unknown;
        try {
          ok = authorize(clientId, msg, client);
        } catch (err) {
          uc.failed(err, 'authorizeDelivery', clientId);
          return undefined;
        }
        if (ok !== true) {
          if (ok !== false) uc.failed(new TypeError('authorizeDelivery hook must return true or false, synchronously'), 'authorizeDelivery', clientId);
          return undefined;
        }
      }
      let current: Message = msg;
      for (const entry of list) {
        let r: unknown;
        try {
          r = entry.fn(current, clientId, client);
        } catch (err) {
          uc.failed(err, entry.name, clientId);
          return undefined;
        }
        if (r === current) continue;
        if (r === null) return undefined;
        const next = interceptedOf(r);
        if (next === undefined || next === null) {
          uc.failed(new TypeError(`${entry.name} returned something that is not a message or null`), entry.name, clientId);
          return undefined;
        }
        current = createMessage({
          topic: next.topic, payload: next.payload, qos: next.qos, retain: next.retain, properties: next.properties,
          senderId: current.senderId, now: this.#clock.now(),
        });
      }
      return current;
    };
    this.deliveryCheck = (clientId, client, msg) => {
      const start = performance.now();
      const out = check(clientId, client, msg);
      latency.observe((performance.now() - start) / 1000);
      return out;
    };
  }
}

