/**
 * Topic names and filters (§4.7) and shared subscriptions (§4.8.2).
 * Pure functions over strings; `matches` is the reference matcher the router's trie is tested against.
 */
import { Buffer } from 'node:buffer';

/**
 * Why a topic name is invalid, or undefined when it is valid. The string decoder already refuses
 * bad UTF-8 and U+0000 on the wire; these checks also hold for names that come from code
 * (broker.publish, wills built in process).
 */
export function topicNameProblem(topic: string): string | undefined {
  const n = topic.length;
  if (n === 0) return 'topic name is empty [MQTT-4.7.3-1]';
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    // [MQTT-3.3.2-2] [MQTT-4.7.0-1]: wildcards are not allowed in topic names.
    if (c === 0x2b || c === 0x23) return 'topic name contains a wildcard [MQTT-3.3.2-2]';
    // [MQTT-4.7.3-2] [MQTT-1.5.4-2]: no U+0000.
    if (c === 0) return 'topic name contains U+0000 [MQTT-4.7.3-2]';
    // [MQTT-1.5.4-1]: well-formed UTF-8, so no lone surrogate (it has no UTF-8 encoding).
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < n ? topic.charCodeAt(i + 1) : 0;
      if (c >= 0xdc00 || next < 0xdc00 || next > 0xdfff) return 'topic name is not valid UTF-8 (lone surrogate) [MQTT-1.5.4-1]';
      i++;
    }
  }
  // [MQTT-4.7.3-3]: at most 65,535 bytes; a UTF-16 code unit takes at most 3 bytes in UTF-8.
  if (n > 21_845 && Buffer.byteLength(topic, 'utf8') > 65_535) return 'topic name is longer than 65,535 bytes [MQTT-4.7.3-3]';
  return undefined;
}

/** Why a topic filter is invalid, or undefined when it is valid. Handles $share/ filters. */
export function topicFilterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'topic filter is empty [MQTT-4.7.3-1]';
  if (filter.startsWith('$share/')) {
    const shared = parseShared(filter);
    if (shared === undefined) return 'shared subscription needs $share/{ShareName}/{filter} [MQTT-4.8.2-1] [MQTT-4.8.2-2]';
    return wildcardProblem(shared.filter);
  }
  return wildcardProblem(filter);
}

function wildcardProblem(filter: string): string | undefined {
  const n = filter.length;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0x23) {
      // [MQTT-4.7.1-2]: '#' alone in its level and the last character.
      if (i !== n - 1 || (i > 0 && filter.charCodeAt(i - 1) !== 0x2f)) return "'#' must be the last level, alone [MQTT-4.7.1-2]";
    } else if (c === 0x2b) {
      // [MQTT-4.7.1-3]: '+' occupies a whole level.
      if ((i > 0 && filter.charCodeAt(i - 1) !== 0x2f) || (i < n - 1 && filter.charCodeAt(i + 1) !== 0x2f)) {
        return "'+' must occupy a whole level [MQTT-4.7.1-3]";
      }
    }
  }
  return undefined;
}

export function isValidTopicName(topic: string): boolean {
  return topicNameProblem(topic) === undefined;
}

export function isValidTopicFilter(filter: string): boolean {
  return topicFilterProblem(filter) === undefined;
}

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

export interface SharedFilter {
  group: string;
  filter: string;
}

/** Splits `$share/{group}/{filter}`; undefined when the form is wrong [MQTT-4.8.2-1] [MQTT-4.8.2-2]. */
export function parseShared(filter: string): SharedFilter | undefined {
  if (!filter.startsWith('$share/')) return undefined;
  const slash = filter.indexOf('/', 7);
  if (slash <= 7) return undefined;
  const group = filter.slice(7, slash);
  if (group.includes('+') || group.includes('#')) return undefined;
  const rest = filter.slice(slash + 1);
  if (rest.length === 0) return undefined;
  return { group, filter: rest };
}

/**
 * Whether `filter` matches `topic` (§4.7). Topics starting with '$' are not matched by a
 * filter starting with a wildcard [MQTT-4.7.2-1].
 */
export function matches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Number of levels in a topic name or filter ("a/b" has 2, "" has 1). */
export function topicLevels(topic: string): number {
  let n = 1;
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 0x2f) n++;
  return n;
}
