/**
 * The configuration as `GET /api/v1/config` shows it: every value under a key that names a
 * secret (passwords, passphrases, keys and their hashes, tokens, JWT secrets, webhook headers)
 * is replaced, at any depth. Paths to files (a TLS key file, a password file) stay: they say
 * where a secret is, not what it is.
 */
export const REDACTED = '[redacted]';

const SECRET = /^(password|passphrase|secret|token|hash|key|headers|authorization|credentials?)$/i;
/** Keys that name a file holding a secret: the path is shown. */
const FILE_OF_SECRET = new Set(['listeners.key', 'key']);

export function redact(value: unknown, path = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => redact(v, path));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const at = path === '' ? k : `${path}.${k}`;
    if (k === 'apiKeys' && Array.isArray(v)) {
      // A key given as a bare string is all secret; a mapping keeps its name and role.
      out[k] = v.map((e: unknown) => (typeof e === 'string' ? REDACTED : redact(e, at)));
    } else if (SECRET.test(k) && !FILE_OF_SECRET.has(at) && v !== undefined) {
      out[k] = Array.isArray(v) ? v.map(() => REDACTED) : REDACTED;
    } else out[k] = redact(v, at);
  }
  return out;
}
