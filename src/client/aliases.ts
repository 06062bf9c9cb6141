/**
 * Outbound topic aliases (5.0 §3.3.2.3.4). Invariants: an alias is never above the server's
 * Topic Alias Maximum [MQTT-3.3.2-9]; the table is per connection [MQTT-3.3.2-7]; when it is
 * full, the least recently used topic gives its alias to the new one (the PUBLISH then carries
 * the topic and the alias, which replaces the mapping on the server [MQTT-3.3.2-12]).
 */

export class OutboundAliases {
  readonly #max: number;
  /** topic → alias, least recently used first. */
  readonly #byTopic = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  /**
   * The alias for `topic`, positive when the server already knows it (send an empty topic),
   * negative when it is new or reassigned (send the topic with the alias).
   */
  use(topic: string): number {
    const known = this.#byTopic.get(topic);
    if (known !== undefined) {
      this.#byTopic.delete(topic);
      this.#byTopic.set(topic, known);
      return known;
    }
    let alias = this.#byTopic.size + 1;
    if (alias > this.#max) {
      const [oldest, reused] = this.#byTopic.entries().next().value as [string, number];
      this.#byTopic.delete(oldest);
      alias = reused;
    }
    this.#byTopic.set(topic, alias);
    return -alias;
  }
}
