/**
 * Access control lists in Mosquitto's `acl_file` format, with Mosquitto 2.x semantics, so an
 * existing file works unchanged:
 *
 * ```
 * # comment
 * topic [read|write|readwrite|deny] <topic>      # before the first `user` line: anonymous clients
 * user <username>
 * topic [read|write|readwrite|deny] <topic>      # this user only
 * pattern [read|write|readwrite|deny] <topic>    # every client; %c = client id, %u = username
 * ```
 *
 * No access word means readwrite. Once a file is in use, anything it does not grant is denied.
 * A check looks at the client's own `topic` rules first (a matching `deny` refuses, a matching
 * grant with the right access allows), then at the `pattern` rules the same way, then refuses.
 * As in Mosquitto, the two lists are consulted in that order, so a `deny` wins over a grant in
 * its own list, and a `topic deny` also wins over every `pattern` grant.
 *
 * Topics starting with `$` are only matched by rules whose first level is literally the same
 * `$` word [MQTT-4.7.2-1]: `topic read #` does not give `$SYS/#`.
 *
 * A client whose username or client id contains `+`, `#` or `/` gets nothing from `pattern`
 * rules (Mosquitto refuses `+` and `#`; `/` would let `%c` reach into another client's subtree).
 *
 * SUBSCRIBE: a filter is allowed only when a read rule covers every topic the filter can match
 * (`sensors/#` covers `sensors/+/temp`; `sensors/a` does not cover `sensors/#`). Mosquitto's
 * own acl_file accepts every subscription and filters at delivery; Petrel refuses early and
 * still filters each delivered message with {@link AclFile.canReceive}.
 *
 * This module reads no files: the server reads the text and calls {@link AclFile.parse}; a
 * reload parses the new text and swaps the instance (and makes new {@link AclCache}s).
 */

/** A parse error naming the 1-based line of the ACL file it is about. */
export class AclFileError extends Error {
  readonly line: number;

  constructor(line: number, message: string) {
    super(`ACL file line ${line}: ${message}`);
    this.name = 'AclFileError';
    this.line = line;
  }
}

const NONE = 0;
const READ = 1;
const WRITE = 2;

const LITERAL = 0;
const PLUS = 1;
const HASH = 2;
const TEMPLATE = 3;

/** `%c` and `%u` inside a template level. */
const CLIENT_ID = 0;
const USERNAME = 1;
type Part = string | typeof CLIENT_ID | typeof USERNAME;

interface Level {
  readonly kind: typeof LITERAL | typeof PLUS | typeof HASH | typeof TEMPLATE;
  readonly text: string;
  /** TEMPLATE only: literal pieces and placeholders in order. */
  readonly parts: readonly Part[];
}

/** @internal A compiled rule; opaque outside this module. */
export interface AclRule {
  readonly access: number;
  readonly levels: readonly Level[];
  readonly usesUsername: boolean;
  readonly usesClientId: boolean;
}

const NO_PARTS: readonly Part[] = [];
const NO_RULES: readonly AclRule[] = [];

function compileLevel(text: string, pattern: boolean): Level {
  if (text === '+') return { kind: PLUS, text, parts: NO_PARTS };
  if (text === '#') return { kind: HASH, text, parts: NO_PARTS };
  if (!pattern || (!text.includes('%c') && !text.includes('%u'))) return { kind: LITERAL, text, parts: NO_PARTS };
  // Mosquitto 2.0 substitutes %c and %u anywhere in the rule text, not only as whole levels.
  const parts: Part[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '%' && (next === 'c' || next === 'u')) {
      if (literal.length > 0) parts.push(literal);
      literal = '';
      parts.push(next === 'c' ? CLIENT_ID : USERNAME);
      i++;
    } else {
      literal += c;
    }
  }
  if (literal.length > 0) parts.push(literal);
  return { kind: TEMPLATE, text, parts };
}

function compileRule(filter: string, access: number, pattern: boolean): AclRule {
  const levels = filter.split('/').map((level) => compileLevel(level, pattern));
  let usesUsername = false;
  let usesClientId = false;
  for (const level of levels) {
    for (const part of level.parts) {
      if (part === USERNAME) usesUsername = true;
      else if (part === CLIENT_ID) usesClientId = true;
    }
  }
  return { access, levels, usesUsername, usesClientId };
}

/** Why `filter` is not a valid rule topic (Mosquitto checks it as a subscription filter). */
function ruleTopicProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'empty topic';
  const n = filter.length;
  for (let i = 0; i < n; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0x23) {
      if (i !== n - 1 || (i > 0 && filter.charCodeAt(i - 1) !== 0x2f)) return `invalid topic "${filter}": '#' must be the last level, alone`;
    } else if (c === 0x2b) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== 0x2f) || (i < n - 1 && filter.charCodeAt(i + 1) !== 0x2f)) {
        return `invalid topic "${filter}": '+' must occupy a whole level`;
      }
    } else if (c === 0) {
      return `invalid topic "${filter}": contains U+0000`;
    }
  }
  return undefined;
}

function accessOf(word: string): number | undefined {
  switch (word) {
    case 'read':
      return READ;
    case 'write':
      return WRITE;
    case 'readwrite':
      return READ | WRITE;
    case 'deny':
      return NONE;
    default:
      return undefined;
  }
}

/** Whether an identity may be substituted into a pattern: non-empty, no `+`, `#` or `/`. */
function safeIdentity(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x2b || c === 0x23 || c === 0x2f) return false;
  }
  return true;
}

/** Matches a TEMPLATE level against `s[from, end)` without building the substituted string. */
function templateMatches(parts: readonly Part[], s: string, from: number, end: number, clientId: string, username: string): boolean {
  let p = from;
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k] as Part;
    const piece = part === CLIENT_ID ? clientId : part === USERNAME ? username : part;
    if (p + piece.length > end || !s.startsWith(piece, p)) return false;
    p += piece.length;
  }
  return p === end;
}

/** Whether `level` (first level of a rule) may match a `$` level: only literally. */
function dollarGuard(rule: AclRule, s: string): boolean {
  if (s.charCodeAt(0) !== 0x24) return true;
  const first = rule.levels[0] as Level;
  return first.kind === LITERAL && first.text.charCodeAt(0) === 0x24;
}

/** Does the rule match the topic name? No allocation. */
function ruleMatchesTopic(rule: AclRule, topic: string, clientId: string, username: string): boolean {
  if (!dollarGuard(rule, topic)) return false;
  const levels = rule.levels;
  const n = topic.length;
  let pos = 0;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as Level;
    if (level.kind === HASH) return true; // also matches the parent level [MQTT-4.7.1-2]
    if (pos > n) return false;
    let end = topic.indexOf('/', pos);
    if (end < 0) end = n;
    if (level.kind === LITERAL) {
      if (end - pos !== level.text.length || !topic.startsWith(level.text, pos)) return false;
    } else if (level.kind === TEMPLATE) {
      if (!templateMatches(level.parts, topic, pos, end, clientId, username)) return false;
    }
    pos = end + 1;
  }
  return pos === n + 1;
}

/** Does the rule cover every topic the (non-shared) filter can match? No allocation. */
function ruleCoversFilter(rule: AclRule, filter: string, clientId: string, username: string): boolean {
  if (!dollarGuard(rule, filter)) return false;
  const levels = rule.levels;
  const n = filter.length;
  let pos = 0;
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as Level;
    if (level.kind === HASH) return true;
    if (pos > n) return false; // the filter ended; the rule asks for more levels
    let end = filter.indexOf('/', pos);
    if (end < 0) end = n;
    const len = end - pos;
    const c = len === 1 ? filter.charCodeAt(pos) : 0;
    if (c === 0x23) return false; // filter '#' is covered only by rule '#' (handled above)
    if (c === 0x2b) {
      if (level.kind !== PLUS) return false;
    } else if (level.kind === LITERAL) {
      if (len !== level.text.length || !filter.startsWith(level.text, pos)) return false;
    } else if (level.kind === TEMPLATE) {
      if (!templateMatches(level.parts, filter, pos, end, clientId, username)) return false;
    }
    pos = end + 1;
  }
  return pos === n + 1;
}

const TOPIC = 0;
const FILTER = 1;

export class AclFile {
  readonly #anonymous: readonly AclRule[];
  readonly #users: ReadonlyMap<string, readonly AclRule[]>;
  readonly #patterns: readonly AclRule[];
  readonly #ruleCount: number;

  private constructor(anonymous: AclRule[], users: Map<string, AclRule[]>, patterns: AclRule[], ruleCount: number) {
    this.#anonymous = anonymous;
    this.#users = users;
    this.#patterns = patterns;
    this.#ruleCount = ruleCount;
  }

  /** Parses the text of an ACL file. Throws {@link AclFileError} naming the line at fault. */
  static parse(text: string): AclFile {
    const anonymous: AclRule[] = [];
    const users = new Map<string, AclRule[]>();
    const patterns: AclRule[] = [];
    let current = anonymous;
    let count = 0;
    const lines = text.split(/\r\n|\n|\r/);
    for (let index = 0; index < lines.length; index++) {
      const lineNo = index + 1;
      const line = (lines[index] as string).trim();
      if (line.length === 0 || line.startsWith('#')) continue;
      const keywordMatch = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
      const keyword = keywordMatch?.[1] ?? '';
      const rest = keywordMatch?.[2] ?? '';
      if (keyword === 'user') {
        const name = rest.trim();
        if (name.length === 0) throw new AclFileError(lineNo, 'missing username after "user"');
        let list = users.get(name);
        if (list === undefined) {
          list = [];
          users.set(name, list);
        }
        current = list;
      } else if (keyword === 'topic' || keyword === 'pattern') {
        if (rest.length === 0) throw new AclFileError(lineNo, `empty topic after "${keyword}"`);
        // As in Mosquitto: one word is the topic; otherwise the first word is the access.
        const split = /^(\S+)[ \t]+(.*)$/.exec(rest);
        let access = READ | WRITE;
        let filter = rest;
        if (split !== null) {
          const word = split[1] as string;
          const value = accessOf(word);
          if (value === undefined) throw new AclFileError(lineNo, `invalid access "${word}" (read, write, readwrite or deny)`);
          access = value;
          filter = (split[2] as string).trim();
        }
        const problem = ruleTopicProblem(filter);
        if (problem !== undefined) throw new AclFileError(lineNo, problem);
        const pattern = keyword === 'pattern';
        const rule = compileRule(filter, access, pattern);
        addRule(pattern ? patterns : current, rule);
        count++;
      } else {
        throw new AclFileError(lineNo, `unknown keyword "${keyword}" (topic, pattern or user)`);
      }
    }
    return new AclFile(anonymous, users, patterns, count);
  }

  /** Number of `topic` and `pattern` rules. */
  get ruleCount(): number {
    return this.#ruleCount;
  }

  /** Write access to `topic` (a PUBLISH, a will). */
  canPublish(username: string | undefined, clientId: string, topic: string): boolean {
    return this.check(this.rulesFor(username), patternsAllowed(username, clientId), username, clientId, topic, WRITE, TOPIC);
  }

  /** Read access for a subscription filter; a `$share/{group}/` prefix is stripped first. */
  canSubscribe(username: string | undefined, clientId: string, filter: string): boolean {
    return this.check(this.rulesFor(username), patternsAllowed(username, clientId), username, clientId, unshare(filter), READ, FILTER);
  }

  /** Read access for a message about to be delivered on `topic`. */
  canReceive(username: string | undefined, clientId: string, topic: string): boolean {
    return this.check(this.rulesFor(username), patternsAllowed(username, clientId), username, clientId, topic, READ, TOPIC);
  }

  /** @internal The client's own `topic` rules: the anonymous section, its user section or none. */
  rulesFor(username: string | undefined): readonly AclRule[] {
    if (username === undefined) return this.#anonymous;
    return this.#users.get(username) ?? NO_RULES;
  }

  /** @internal One decision; `own` and `patterns` come from {@link rulesFor} / {@link patternsAllowed}. */
  check(own: readonly AclRule[], patterns: boolean, username: string | undefined, clientId: string, subject: string, access: number, kind: number): boolean {
    if (subject.length === 0) return false;
    const user = username ?? '';
    const verdict = scan(own, subject, clientId, user, access, kind, true);
    if (verdict !== undefined) return verdict;
    if (!patterns) return false;
    return scan(this.#patterns, subject, clientId, user, access, kind, username !== undefined) ?? false;
  }
}

/** Deny rules go first in their list, as Mosquitto keeps them. */
function addRule(list: AclRule[], rule: AclRule): void {
  if (rule.access === NONE) {
    let i = 0;
    while (i < list.length && (list[i] as AclRule).access === NONE) i++;
    list.splice(i, 0, rule);
  } else {
    list.push(rule);
  }
}

/** Pattern rules apply only to identities that cannot change the shape of a rule. */
function patternsAllowed(username: string | undefined, clientId: string): boolean {
  return safeIdentity(clientId) && (username === undefined || safeIdentity(username));
}

function unshare(filter: string): string {
  if (!filter.startsWith('$share/')) return filter;
  const slash = filter.indexOf('/', 7);
  return slash < 0 ? '' : filter.slice(slash + 1);
}

/** true = allowed, false = denied, undefined = no rule in this list decided. */
function scan(rules: readonly AclRule[], subject: string, clientId: string, username: string, access: number, kind: number, hasUsername: boolean): boolean | undefined {
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as AclRule;
    if (rule.usesUsername && (!hasUsername || username.length === 0)) continue;
    if (rule.usesClientId && clientId.length === 0) continue;
    const hit = kind === TOPIC ? ruleMatchesTopic(rule, subject, clientId, username) : ruleCoversFilter(rule, subject, clientId, username);
    if (!hit) continue;
    if (rule.access === NONE) return false;
    if ((rule.access & access) !== 0) return true;
  }
  return undefined;
}

/**
 * A bounded per-connection decision cache over one {@link AclFile}. Decisions depend only on
 * (username, client id, topic, action), all fixed for the connection but the topic, so each
 * action keeps a map from topic to answer, cleared when it reaches `max` entries. After a
 * reload, make a new cache for the new file.
 */
export class AclCache {
  readonly #acl: AclFile;
  readonly #username: string | undefined;
  readonly #clientId: string;
  readonly #own: readonly AclRule[];
  readonly #patterns: boolean;
  readonly #max: number;
  readonly #publish = new Map<string, boolean>();
  readonly #subscribe = new Map<string, boolean>();
  readonly #receive = new Map<string, boolean>();

  constructor(acl: AclFile, username: string | undefined, clientId: string, max = 1024) {
    this.#acl = acl;
    this.#username = username;
    this.#clientId = clientId;
    this.#own = acl.rulesFor(username);
    this.#patterns = patternsAllowed(username, clientId);
    this.#max = Math.max(1, Math.floor(max));
  }

  canPublish(topic: string): boolean {
    return this.#cached(this.#publish, topic, WRITE, TOPIC);
  }

  canSubscribe(filter: string): boolean {
    return this.#cached(this.#subscribe, unshare(filter), READ, FILTER);
  }

  canReceive(topic: string): boolean {
    return this.#cached(this.#receive, topic, READ, TOPIC);
  }

  #cached(map: Map<string, boolean>, subject: string, access: number, kind: number): boolean {
    const known = map.get(subject);
    if (known !== undefined) return known;
    const answer = this.#acl.check(this.#own, this.#patterns, this.#username, this.#clientId, subject, access, kind);
    if (map.size >= this.#max) map.clear();
    map.set(subject, answer);
    return answer;
  }
}
