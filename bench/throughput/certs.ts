/**
 * Bench fixtures: a throw-away certificate authority and a server certificate for 127.0.0.1,
 * made with the openssl command in the run's temporary directory for the TLS and secure
 * WebSocket scenarios. Nothing here is ever committed; the keys die with the directory.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface BenchCerts {
  /** PEM file of the CA the clients trust. */
  ca: string;
  /** PEM files of the broker's certificate (signed by the CA, SAN IP:127.0.0.1) and its key. */
  cert: string;
  key: string;
}

/** Generates the CA and the server certificate under `dir` (RSA 2048, valid 2 days). */
export function makeBenchCerts(dir: string): BenchCerts {
  const f = (name: string): string => path.join(dir, name);
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] }); };
  fs.writeFileSync(f('server.ext'), [
    'subjectAltName = IP:127.0.0.1', 'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment', 'extendedKeyUsage = serverAuth', '',
  ].join('\n'));
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', '/CN=Petrel bench CA',
    '-keyout', f('ca.key'), '-out', f('ca.crt'));
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'));
  ssl('x509', '-req', '-sha256', '-days', '2', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-extfile', f('server.ext'), '-out', f('server.crt'));
  // Nothing else is signed with the CA: its key goes now, the server's at the end of the run.
  fs.rmSync(f('ca.key'));
  // Mosquitto started as root reads its files as the mosquitto user: the directory is mkdtemp's (0700).
  fs.chmodSync(dir, 0o755);
  for (const name of ['ca.crt', 'server.crt', 'server.key']) fs.chmodSync(f(name), 0o644);
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}
