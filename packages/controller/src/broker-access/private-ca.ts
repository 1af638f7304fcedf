import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PrivateCa {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * A private CA and a broker certificate it signed, for localhost and 127.0.0.1, made with openssl
 * in `dir` — the commands docs/security.md shows (tests).
 */
export function makePrivateCa(dir: string, name = 'podfleet test'): PrivateCa {
  const at = (file: string) => join(dir, file);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at('ca.key'));
  openssl(
    ...['req', '-x509', '-new', '-key', at('ca.key'), '-sha256', '-days', '3650'],
    ...['-subj', `/CN=${name} CA`, '-out', at('ca.crt')],
  );
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at('broker.key'));
  openssl('req', '-new', '-key', at('broker.key'), '-subj', '/CN=broker', '-out', at('broker.csr'));
  writeFileSync(at('broker.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    ...['x509', '-req', '-in', at('broker.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key')],
    ...['-CAcreateserial', '-days', '825', '-sha256', '-extfile', at('broker.ext')],
    ...['-out', at('broker.crt')],
  );
  return { caFile: at('ca.crt'), certFile: at('broker.crt'), keyFile: at('broker.key') };
}
