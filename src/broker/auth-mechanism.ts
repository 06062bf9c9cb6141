/**
 * Enhanced authentication (MQTT 5.0 §4.12): a mechanism named by the Authentication Method
 * property runs a challenge / response exchange over CONNECT, AUTH (0x18 Continue) and CONNACK,
 * or over AUTH 0x19 (Re-authenticate) on a live connection. The broker drives the exchange;
 * the mechanism only turns client data into the next step.
 */
import type { Buffer } from 'node:buffer';
import type { ConnectionMeta } from '../transport/types.js';

export interface AuthStartContext {
  clientId: string;
  username: string | undefined;
  remoteAddress: string | undefined;
  /** How the client came in (listener, TLS certificate, WebSocket headers, PROXY source). */
  connection: ConnectionMeta;
  /** True when a connected client re-authenticates with AUTH 0x19. */
  reauthenticate: boolean;
}

export type AuthStep =
  /** Send AUTH 0x18 with this data and wait for the client's next AUTH. */
  | { status: 'continue'; data: Buffer }
  /** Authenticated; `data` (optional) goes in CONNACK or in the final AUTH 0x00. */
  | { status: 'success'; data?: Buffer }
  /** Refused; the broker answers with `reasonCode` (default 0x87 Not Authorized). */
  | { status: 'failure'; reasonCode?: number };

/** One exchange, for one connection. */
export interface AuthExchange {
  /** Called first with the Authentication Data of CONNECT (or AUTH 0x19), then with each AUTH 0x18. */
  next(data: Buffer | undefined): Promise<AuthStep>;
}

export interface AuthMechanism {
  /** The Authentication Method, e.g. "SCRAM-SHA-256". */
  readonly method: string;
  start(ctx: AuthStartContext): AuthExchange;
}
