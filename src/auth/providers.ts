/**
 * The built-in providers composed into broker hooks, so the standalone server needs no code:
 * anonymous access, a password file (Petrel's or Mosquitto's), an ACL file (Mosquitto's syntax),
 * JSON Web Tokens and an HTTP webhook. Files are read by the server and handed over as parsed
 * objects; `replace*` swaps them on reload (ACL decisions cached per connection are dropped).
 *
 * Authentication, in order: a client with neither username nor password is anonymous (accepted
 * only when anonymous access is on); a username in the password file is checked against it; a
 * password that looks like a JWT is verified as one; then the HTTP webhook decides; a client no
 * provider accepted is refused with 0x86 Bad User Name or Password (3.1.1: 4); with no provider
 * that checks credentials configured, a username is taken as given. A provider that
 * cannot answer (JWKS or webhook unreachable, with onError deny) refuses with 0x88 Server
 * unavailable (3.1.1: 3).
 *
 * Authorization: the ACL file (publish: write; subscribe and each delivery: read) and the
 * webhook's authorize endpoint must both allow; a JWT's or webhook's per-client ACL is enforced by
 * the broker itself (ClientInfo.acl).
 */
import type { BrokerHooks, ClientAcl } from '../broker/hooks.js';
import type { ClientInfo } from '../broker/events.js';
import { ReasonCode } from '../protocol/index.js';
import { AclCache, type AclFile } from './acl-file.js';
import type { HttpAuth } from './http-auth.js';
import { JwtAuthError, type JwtAuth } from './jwt.js';
import type { PasswordFile } from './password-file.js';

export interface AuthSetup {
  /** Accept clients that send neither username nor password. */
  anonymous: boolean;
  passwords?: PasswordFile | undefined;
  acl?: AclFile | undefined;
  jwt?: JwtAuth | undefined;
  http?: HttpAuth | undefined;
}

/** Three base64url parts separated by dots: a compact JWS. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

const bounded = <K, V>(map: Map<K, V>, key: K, value: V, max: number): void => {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
};

export class AuthProviders {
  readonly #setup: AuthSetup;
  /** ACL decision caches per connected client, dropped on reload (a new generation). */
  #caches = new WeakMap<ClientInfo, AclCache>();
  /** Usernames of clients seen, for deliveries to offline sessions (bounded). */
  readonly #usernames = new Map<string, string | undefined>();

  constructor(setup: AuthSetup) {
    this.#setup = { ...setup };
  }

  get anonymous(): boolean {
    return this.#setup.anonymous;
  }

  replacePasswords(passwords: PasswordFile | undefined): void {
    this.#setup.passwords = passwords;
  }

  replaceAcl(acl: AclFile | undefined): void {
    this.#setup.acl = acl;
    this.#caches = new WeakMap();
  }

  /** The broker hooks these providers need (only those). */
  hooks(): BrokerHooks {
    const s = this.#setup;
    const hooks: BrokerHooks = {
      authenticate: async (ctx) => {
        const password = ctx.password;
        if (ctx.username === undefined && password === undefined) {
          if (!this.#setup.anonymous) return ReasonCode.NotAuthorized;
          this.#remember(ctx.clientId, undefined);
          return true;
        }
        const passwords = this.#setup.passwords;
        if (passwords !== undefined && ctx.username !== undefined && passwords.has(ctx.username)) {
          const ok = password !== undefined && await passwords.verify(ctx.username, password);
          if (ok) this.#remember(ctx.clientId, ctx.username);
          return ok ? true : ReasonCode.BadUserNameOrPassword;
        }
        const token = password?.toString('utf8');
        if (s.jwt !== undefined && token !== undefined && JWT_SHAPE.test(token)) {
          try {
            const id = await s.jwt.verify(token);
            const username = id.username ?? ctx.username;
            this.#remember(ctx.clientId, username);
            const acl: ClientAcl | undefined = id.acl === undefined ? undefined : { publish: id.acl.publish, subscribe: id.acl.subscribe };
            return { ...(username !== undefined ? { username } : {}), ...(acl !== undefined ? { acl } : {}) };
          } catch (err) {
            if (err instanceof JwtAuthError && err.reason === 'unavailable') return ReasonCode.ServerUnavailable;
            return ReasonCode.BadUserNameOrPassword;
          }
        }
        if (s.http !== undefined) {
          const r = await s.http.authenticate({
            clientId: ctx.clientId, username: ctx.username, password, remoteAddress: ctx.remoteAddress,
            listener: ctx.connection.listener?.name, protocolVersion: ctx.protocolVersion,
          });
          if (r.failed && !r.allow) return ReasonCode.ServerUnavailable;
          if (!r.allow) return r.reasonCode ?? ReasonCode.NotAuthorized;
          const username = r.username ?? ctx.username;
          this.#remember(ctx.clientId, username);
          const acl: ClientAcl | undefined = r.acl === undefined ? undefined : { publish: r.acl.publish, subscribe: r.acl.subscribe };
          return { ...(username !== undefined ? { username } : {}), ...(acl !== undefined ? { acl } : {}) };
        }
        // No provider checks credentials (only an ACL file, say): a username is taken as given,
        // as Mosquitto does without a password file.
        if (passwords === undefined && s.jwt === undefined && s.http === undefined) {
          this.#remember(ctx.clientId, ctx.username);
          return true;
        }
        return ReasonCode.BadUserNameOrPassword;
      },
    };
    const httpAuthorize = s.http?.authorize;
    if (s.acl !== undefined || httpAuthorize !== undefined) {
      hooks.authorizePublish = (ctx) => {
        const acl = this.#setup.acl;
        if (acl !== undefined && ctx.client !== undefined && !this.#cache(ctx.client, acl).canPublish(ctx.topic)) return false;
        if (acl !== undefined && ctx.client === undefined && !acl.canPublish(ctx.username, ctx.clientId, ctx.topic)) return false;
        if (httpAuthorize === undefined) return true;
        return httpAuthorize({ clientId: ctx.clientId, username: ctx.username, action: 'publish', topic: ctx.topic, qos: ctx.qos, retain: ctx.retain });
      };
      hooks.authorizeSubscribe = (ctx) => {
        const acl = this.#setup.acl;
        if (acl !== undefined && !this.#cache(ctx.client, acl).canSubscribe(ctx.topicFilter)) return false;
        if (httpAuthorize === undefined) return true;
        return httpAuthorize({ clientId: ctx.clientId, username: ctx.username, action: 'subscribe', topic: ctx.topicFilter, qos: ctx.qos, retain: false });
      };
    }
    if (s.acl !== undefined) {
      hooks.authorizeDelivery = (clientId, message, client) => {
        const acl = this.#setup.acl;
        if (acl === undefined) return true;
        if (client !== undefined) return this.#cache(client, acl).canReceive(message.topic);
        return acl.canReceive(this.#usernames.get(clientId), clientId, message.topic);
      };
    }
    return hooks;
  }

  #cache(client: ClientInfo, acl: AclFile): AclCache {
    let cache = this.#caches.get(client);
    if (cache === undefined) {
      cache = new AclCache(acl, client.username, client.clientId);
      this.#caches.set(client, cache);
    }
    return cache;
  }

  #remember(clientId: string, username: string | undefined): void {
    if (this.#setup.acl !== undefined) bounded(this.#usernames, clientId, username, 100_000);
  }
}
