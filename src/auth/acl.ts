/**
 * Per-client topic ACLs carried by a token or an auth service's answer: `{ pub?: string[], sub?:
 * string[] }` of MQTT topic filters. Parsing refuses anything malformed (a wrong type, an invalid
 * filter), so a mistake in an ACL never widens what a client may do.
 */
import { topicFilterProblem } from '../protocol/topic.js';

export interface TopicAcl {
  /** Filters the client may publish to. Empty: it may publish nowhere. */
  publish: string[];
  /** Filters the client may subscribe to. Empty: it may subscribe nowhere. */
  subscribe: string[];
}

/** At most this many filters per list: an ACL is read once per connection, but bounded all the same. */
export const MAX_ACL_FILTERS = 1024;

function filterList(value: unknown, key: string): string[] | string {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return `"${key}" must be an array of topic filters`;
  if (value.length > MAX_ACL_FILTERS) return `"${key}" has more than ${MAX_ACL_FILTERS} filters`;
  const out: string[] = [];
  for (const filter of value as unknown[]) {
    if (typeof filter !== 'string') return `"${key}" must be an array of topic filters`;
    const problem = topicFilterProblem(filter);
    if (problem !== undefined) return `"${key}" holds an invalid topic filter: ${problem}`;
    out.push(filter);
  }
  return out;
}

/** The ACL in `value`, or a string saying why it is malformed. */
export function parseAcl(value: unknown): TopicAcl | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the ACL must be an object { pub?: string[], sub?: string[] }';
  const record = value as Record<string, unknown>;
  const publish = filterList(record['pub'], 'pub');
  if (typeof publish === 'string') return publish;
  const subscribe = filterList(record['sub'], 'sub');
  if (typeof subscribe === 'string') return subscribe;
  return { publish, subscribe };
}

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;

/**
 * Whether `filter` matches the topic name `topic` (§4.7), without allocating: the same answers
 * as `matches` in protocol/topic.ts. A wildcard counts only when it is a whole level; a topic
 * starting with '$' is not matched by a filter starting with a wildcard [MQTT-4.7.2-1].
 */
export function filterMatches(filter: string, topic: string): boolean {
  const fn = filter.length;
  const tn = topic.length;
  if (tn > 0 && topic.charCodeAt(0) === DOLLAR && fn > 0) {
    const first = filter.charCodeAt(0);
    if (first === PLUS || first === HASH) return false;
  }
  let fi = 0;
  let ti = 0;
  for (;;) {
    // Both indices are at the start of a level.
    const c = fi < fn ? filter.charCodeAt(fi) : -1;
    const wholeLevel = fi + 1 === fn || (fi + 1 < fn && filter.charCodeAt(fi + 1) === SLASH);
    if (c === HASH && wholeLevel) return true; // '#' also matches the parent level [MQTT-4.7.1-2]
    if (c === PLUS && wholeLevel) {
      while (ti < tn && topic.charCodeAt(ti) !== SLASH) ti++;
      fi++;
    } else {
      while (fi < fn && filter.charCodeAt(fi) !== SLASH) {
        if (ti >= tn || topic.charCodeAt(ti) !== filter.charCodeAt(fi)) return false;
        fi++;
        ti++;
      }
      if (ti < tn && topic.charCodeAt(ti) !== SLASH) return false;
    }
    // fi and ti are each at a '/' or at the end.
    if (fi === fn) return ti === tn;
    if (ti === tn) return fi + 2 === fn && filter.charCodeAt(fi + 1) === HASH; // "a/#" matches "a"
    fi++;
    ti++;
  }
}

/** Whether the topic name `topic` matches one of `filters` (MQTT wildcard rules, see `filterMatches`). */
export function matchesAny(filters: readonly string[], topic: string): boolean {
  for (let i = 0; i < filters.length; i++) {
    if (filterMatches(filters[i] as string, topic)) return true;
  }
  return false;
}
