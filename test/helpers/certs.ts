/**
 * TEST FIXTURES: certificates made on the fly with the openssl command for the TLS tests. A
 * throw-away CA signs a server certificate (CN localhost, SAN localhost and 127.0.0.1) and client
 * certificates; nothing here is a secret or used outside the tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  dir: string;
  /** File names (PEM). */
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** Contents (PEM). */
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  /** A client certificate signed by the CA; `subjectAltName` e.g. "email:alice@example.com". */
  client(cn: string, subjectAltName?: string): { cert: Buffer; key: Buffer; certFile: string; keyFile: string };
  /** A second server certificate from the same CA (for reload tests), CN `cn`. */
  server(cn: string): { cert: Buffer; key: Buffer; certFile: string; keyFile: string };
  /** A certificate signed by another CA: it must not verify. */
  stranger(cn: string): { cert: Buffer; key: Buffer; certFile: string; keyFile: string };
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** A fresh test CA with a server certificate, in a temporary directory. */
export function makeCerts(): CertFiles {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-certs-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string): void => openssl(['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-days', '2', '-subj', `/CN=Petrel test fixture ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  ca('ca');
  let serial = 0;
  const issue = (name: string, cn: string, ext: string, signer = 'ca'): { cert: Buffer; key: Buffer; certFile: string; keyFile: string } => {
    const id = `${name}-${++serial}`;
    openssl(['req', ...ec, '-keyout', `${id}.key`, '-out', `${id}.csr`, '-subj', `/CN=${cn}`], dir);
    writeFileSync(join(dir, `${id}.ext`), ext);
    openssl(['x509', '-req', '-in', `${id}.csr`, '-CA', `${signer}.crt`, '-CAkey', `${signer}.key`, '-CAcreateserial',
      '-out', `${id}.crt`, '-days', '2', '-extfile', `${id}.ext`], dir);
    const certFile = join(dir, `${id}.crt`);
    const keyFile = join(dir, `${id}.key`);
    return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
  };
  const serverExt = (cn: string): string => `subjectAltName=DNS:${cn},DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`;
  const server = issue('server', 'localhost', serverExt('localhost'));
  let otherCa = false;
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: server.certFile,
    serverKey: server.keyFile,
    ca: readFileSync(join(dir, 'ca.crt')),
    cert: server.cert,
    key: server.key,
    client: (cn, san) => issue('client', cn, `extendedKeyUsage=clientAuth\n${san !== undefined ? `subjectAltName=${san}\n` : ''}`),
    server: (cn) => issue('server', cn, serverExt(cn)),
    stranger: (cn) => {
      if (!otherCa) {
        ca('other');
        otherCa = true;
      }
      return issue('stranger', cn, 'extendedKeyUsage=clientAuth\n', 'other');
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
