/**
 * The seam between the broker and a cluster of brokers (src/cluster/). The broker knows nothing
 * of Redis: it tells its `ClusterLink` what was published here and which topic filters its
 * sessions subscribe to, and the link hands messages published on other nodes back through
 * `BrokerCore.deliverRemote`. Without a link every hook point is one field check.
 */
import type { Message } from './message.js';

export interface ClusterLink {
  /** This node's id. */
  readonly nodeId: string;
  /**
   * A message published on this node (a client's PUBLISH, a will, `broker.publish`), after it was
   * routed here. The link forwards it to the nodes whose subscriptions match; returns how many.
   */
  published(msg: Message): number;
  /**
   * True while a forwarded QoS 1/2 message is not yet safe in the cluster bus: the publisher's
   * PUBACK / PUBREC then waits for `forwarded()`.
   */
  readonly pending: boolean;
  /** Resolves once every forward made so far is safe (or was counted as dropped). */
  forwarded(): Promise<void>;
  /**
   * Cluster-wide shared subscriptions (optional): `clientId` here joined the group
   * `$share/{group}/{filter}`. A link with this method picks the member of every matching group
   * for the messages published here, this node's members included (through
   * `BrokerCore.deliverToMember`), and the broker's own routing leaves the groups out; without
   * it the broker picks a member here and announces the group's filter with `subscribed`.
   */
  shareJoined?(group: string, filter: string, clientId: string): void;
  /** The inverse of `shareJoined`. */
  shareLeft?(group: string, filter: string, clientId: string): void;
  /**
   * With `shareJoined`: whether the group has a member other than `clientId` here, on any node
   * (an online one when `online`): a leaving member's unacknowledged messages can move to it.
   */
  shareAvailable?(group: string, filter: string, clientId: string, online: boolean): boolean;
  /** With `shareJoined`: gives `msg` to another member than `clientId` here, on any node (online first); false when there is none. */
  reshare?(group: string, filter: string, msg: Message, clientId: string): boolean;
  /** A session here subscribed to `filter` (the plain filter; for a shared subscription, the group's unless `shareJoined`). */
  subscribed(filter: string): void;
  /** The inverse of `subscribed`, once per earlier call. */
  unsubscribed(filter: string): void;
  /**
   * Cluster-wide client ids (optional): resolves with a fencing token once this node holds the
   * lease of `clientId` and the node that held its connection or its session (wherever it is)
   * let it go (its connection taken over, its session written); rejects when that cannot happen
   * in time (the CONNECT is refused). Every `claim` is followed by `connected` or `unclaimed`.
   */
  claim?(clientId: string, clean: boolean): Promise<number>;
  /** The claimed client is connected here (its lease is renewed while it stays). */
  connected?(clientId: string, token: number): void;
  /** The connection that claimed `clientId` with `token` ended (or never completed): its lease goes. */
  unclaimed?(clientId: string, token: number): void;
}
