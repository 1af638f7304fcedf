import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomUUID, sign, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { makePrivateCa } from '../broker-access/private-ca.js';
import { freePort } from '../broker-access/testing.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveImageDigest } from './image-digest.js';

// The real thing on both sides: Debian's docker-registry (distribution 2.8) holding images that
// podman pushed, and podman pulling what the resolver pinned.
const REGISTRY = '/usr/bin/docker-registry';
const present = existsSync(REGISTRY) && spawnSync('podman', ['--version']).status === 0;
const title = present
  ? 'resolveImageDigest against docker-registry and podman'
  : `resolveImageDigest against docker-registry and podman: skipped, ${REGISTRY} or podman missing (scripts/test-env.sh installs them)`;

const execFileAsync = promisify(execFile);
const IMAGE = 'localhost/podfleet-test/hello:1';
// htpasswd line for ci:lab-secret; the registry takes bcrypt only (Python's crypt, cost 5).
const HTPASSWD = 'ci:$2b$05$FWgUwJVJlKckgaRf8eCGF.ikJa4lUn01emQReR4.dlLOBiFwcV9Bm\n';
const TOKEN_SERVICE = 'podfleet-test';
const TOKEN_ISSUER = 'podfleet-test-tokens';

interface Registry {
  host: string;
  stop(): Promise<void>;
}

let dir: string;
let podmanEnv: NodeJS.ProcessEnv;
const registries: Registry[] = [];

async function podman(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('podman', args, { env: podmanEnv });
    return stdout;
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`podman ${args.join(' ')}: ${stderr?.trim() || String(error)}`);
  }
}

/** Pushes the test image as `host/repo`, returning the digest podman wrote (--digestfile). */
async function push(destination: string, ...flags: string[]): Promise<string> {
  const digestFile = join(dir, `digest-${registries.length}-${Date.now()}`);
  const options = ['--tls-verify=false', '--digestfile', digestFile, ...flags];
  await podman('push', ...options, IMAGE, destination);
  return (await readFile(digestFile, 'utf8')).trim();
}

/** `podman login` as ci:lab-secret, writing the auth file exactly as devices get theirs. */
async function podmanLogin(host: string, authFile: string): Promise<void> {
  const login = ['--username', 'ci', '--password', 'lab-secret'];
  await podman('login', '--tls-verify=false', '--authfile', authFile, ...login, host);
}

interface TokenService {
  realm: string;
  /** What each token request asked for: `service scope login`. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Docker's token protocol as distribution's `auth: token` checks it: an ES256 JWT carrying in its
 * x5c header the certificate of the registry's rootcertbundle. `ci:lab-secret` gets what it asks
 * for; no login gets a token without access (as Docker Hub for a private repository); a wrong one
 * gets a 401 with Docker Hub's `details`.
 */
async function startTokenService(key: string, cert: string): Promise<TokenService> {
  const x5c = [new X509Certificate(cert).raw.toString('base64')];
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url!, 'http://token');
    const scopes = url.searchParams.getAll('scope');
    const login = req.headers.authorization
      ? Buffer.from(req.headers.authorization.replace(/^Basic /, ''), 'base64').toString()
      : undefined;
    requests.push(`${url.searchParams.get('service')} ${scopes.join(' ')} ${login ?? 'anonymous'}`);
    if (login !== undefined && login !== 'ci:lab-secret') {
      res.writeHead(401, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ details: 'incorrect username or password' }));
    }
    const access = login
      ? scopes.map((scope) => {
          const [type, name, actions] = scope.split(':');
          return { type, name, actions: actions!.split(',') };
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      ...{ iss: TOKEN_ISSUER, sub: login?.split(':')[0] ?? '', aud: TOKEN_SERVICE },
      ...{ exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access },
    };
    const header = { typ: 'JWT', alg: 'ES256', x5c };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `${input}.${base64url(signature)}`, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return { realm: `http://127.0.0.1:${port}/token`, requests, close };
}

const base64url = (text: string | Buffer) => Buffer.from(text).toString('base64url');

/**
 * docker-registry on 127.0.0.1, storage in a temp dir (as lab-registry.ts does): plain http, or
 * `tls` (YAML of distribution's http.tls: certificate, key, clientcas).
 */
async function startRegistry(name: string, config: string[] = [], tls?: string): Promise<Registry> {
  const root = join(dir, name);
  await mkdir(root);
  const host = `127.0.0.1:${await freePort()}`;
  await writeFile(
    join(root, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${join(root, 'data')} } }`,
      `http: { addr: "${host}"${tls ? `, tls: ${tls}` : ''} }`,
      ...config,
      '',
    ].join('\n'),
  );
  const child = spawn(REGISTRY, ['serve', join(root, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  const registry = { host, stop };
  registries.push(registry);
  const deadline = Date.now() + 10_000;
  // Any answer to the API's version check will do: 401 is the answer of one that wants a login,
  // 400 ("an HTTP request to an HTTPS server") of one speaking TLS.
  while (
    !(await fetch(`http://${host}/v2/`).then(
      () => true,
      () => false,
    ))
  ) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`docker-registry ${name} did not start: ${log.trim() || 'no output'}`);
    }
    await sleep(50);
  }
  return registry;
}

describe.skipIf(!present)(title, () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podfleet-image-digest-'));
    // A private podman store (vfs: nothing mounted on the host), so the host's images stay untouched.
    await writeFile(
      join(dir, 'storage.conf'),
      `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/store"\nrunroot = "${dir}/run"\n`,
    );
    await writeFile(
      join(dir, 'containers.conf'),
      `[engine]\nlock_type = "file"\ntmp_dir = "${dir}/tmp"\nevents_logger = "file"\n`,
    );
    podmanEnv = {
      ...process.env,
      CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
      CONTAINERS_CONF: join(dir, 'containers.conf'),
    };
    // The smallest image there is: one file, imported.
    await mkdir(join(dir, 'rootfs'));
    await writeFile(join(dir, 'rootfs', 'hello.txt'), 'podfleet\n');
    await execFileAsync('tar', ['-C', join(dir, 'rootfs'), '-cf', join(dir, 'rootfs.tar'), '.']);
    await podman('import', join(dir, 'rootfs.tar'), IMAGE);
  });

  afterAll(async () => {
    await Promise.all(registries.map((registry) => registry.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('an open registry', () => {
    let registry: Registry;
    beforeAll(async () => {
      registry = await startRegistry('open');
    });
    const access = () => ({ insecure: [registry.host], timeoutMs: 10_000 });

    it.each([
      ['oci', 'an OCI manifest'],
      ['v2s2', 'a Docker v2 manifest'],
    ])('pins a tag pushed as %s to the digest podman pushed (%s)', async (format) => {
      const repository = `${registry.host}/podfleet/hello-${format}`;
      const pushed = await push(`${repository}:1`, '--format', format);
      expect(pushed).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(await resolveImageDigest(`${repository}:1`, access())).toBe(`${repository}@${pushed}`);
    });

    it('pins a manifest list (an OCI index) to the digest of the list, which podman then pulls', async () => {
      const repository = `${registry.host}/podfleet/hello-list`;
      const list = 'localhost/podfleet-test/hello-list:1';
      await podman('manifest', 'create', list);
      await podman('manifest', 'add', list, `containers-storage:${IMAGE}`);
      const digestFile = join(dir, 'list-digest');
      const flags = ['--all', '--tls-verify=false', '--digestfile', digestFile];
      await podman('manifest', 'push', ...flags, list, `docker://${repository}:1`);
      const pushed = (await readFile(digestFile, 'utf8')).trim();
      const pinned = await resolveImageDigest(`${repository}:1`, access());
      expect(pinned).toBe(`${repository}@${pushed}`);
      await podman('pull', '--tls-verify=false', pinned);
    });

    it('says manifest unknown for a tag that was never pushed', async () => {
      const repository = `${registry.host}/podfleet/hello-oci`;
      await expect(resolveImageDigest(`${repository}:nope`, access())).rejects.toThrow(
        `image ${repository}:nope: ${registry.host} answered 404 Not Found for manifest nope: ` +
          'manifest unknown',
      );
    });

    it('says TLS failed when the registry is not listed insecure', async () => {
      await expect(
        resolveImageDigest(`${registry.host}/podfleet/hello-oci:1`, { timeoutMs: 10_000 }),
      ).rejects.toThrow(`TLS failure with https://${registry.host}: wrong version number`);
    });
  });

  describe('a registry with htpasswd logins', () => {
    let registry: Registry;
    let repository: string;
    let pushed: string;
    let authFile: string;
    beforeAll(async () => {
      await writeFile(join(dir, 'htpasswd'), HTPASSWD);
      registry = await startRegistry('logins', [
        `auth: { htpasswd: { realm: podfleet-test, path: ${join(dir, 'htpasswd')} } }`,
      ]);
      repository = `${registry.host}/podfleet/private`;
      authFile = join(dir, 'auth.json');
      await podmanLogin(registry.host, authFile);
      pushed = await push(`${repository}:1`, '--authfile', authFile);
    });

    it("pins the tag with the login of podman's auth file", async () => {
      const access = { authFile, insecure: [registry.host], timeoutMs: 10_000 };
      expect(await resolveImageDigest(`${repository}:1`, access)).toBe(`${repository}@${pushed}`);
    });

    it('says a login is needed when there is none', async () => {
      await expect(
        resolveImageDigest(`${repository}:1`, { insecure: [registry.host], timeoutMs: 10_000 }),
      ).rejects.toThrow(
        `image ${repository}:1: ${registry.host} asks for a login and no auth file ` +
          '(PODFLEET_REGISTRY_AUTH_FILE)',
      );
    });

    it("gives the registry's message when it refuses the login", async () => {
      const wrong = join(dir, 'wrong-auth.json');
      const auth = Buffer.from('ci:not-the-secret').toString('base64');
      await writeFile(wrong, JSON.stringify({ auths: { [registry.host]: { auth } } }));
      const access = { authFile: wrong, insecure: [registry.host], timeoutMs: 10_000 };
      await expect(resolveImageDigest(`${repository}:1`, access)).rejects.toThrow(
        `image ${repository}:1: ${registry.host} answered 401 Unauthorized for manifest 1: ` +
          `authentication required (login ${registry.host} of ${wrong})`,
      );
    });
  });

  describe('a registry with a private CA that asks devices for a client certificate', () => {
    let registry: Registry;
    let repository: string;
    let pushed: string;
    let certsDir: string;
    beforeAll(async () => {
      const server = makePrivateCa(await mkdtemp(join(dir, 'server-ca-')), 'registry');
      const devices = makePrivateCa(await mkdtemp(join(dir, 'device-ca-')), 'devices');
      registry = await startRegistry(
        'mtls',
        [],
        `{ certificate: ${server.certFile}, key: ${server.keyFile}, clientcas: [${devices.caFile}] }`,
      );
      // /etc/containers/certs.d as a device has it: the CA, and the device's certificate and key.
      certsDir = join(dir, 'certs.d');
      const hostDir = join(certsDir, registry.host);
      await mkdir(hostDir, { recursive: true });
      await copyFile(server.caFile, join(hostDir, 'ca.crt'));
      await copyFile(devices.certFile, join(hostDir, 'device.cert'));
      await copyFile(devices.keyFile, join(hostDir, 'device.key'));
      repository = `${registry.host}/podfleet/hello-tls`;
      const digestFile = join(dir, 'tls-digest');
      const flags = ['--cert-dir', hostDir, '--digestfile', digestFile];
      await podman('push', ...flags, IMAGE, `${repository}:1`);
      pushed = (await readFile(digestFile, 'utf8')).trim();
    });

    it('pins the tag over TLS with the CA and client certificate of certs.d, which podman then pulls', async () => {
      const pinned = await resolveImageDigest(`${repository}:1`, {
        certsDirs: [certsDir],
        timeoutMs: 10_000,
      });
      expect(pinned).toBe(`${repository}@${pushed}`);
      await podman('pull', '--cert-dir', join(certsDir, registry.host), pinned);
    });

    it('says where the CA goes without it, and where the client certificate goes without that', async () => {
      const empty = join(dir, 'empty-certs.d');
      await mkdir(empty, { recursive: true });
      const noCa = { certsDirs: [empty], timeoutMs: 10_000 };
      await expect(resolveImageDigest(`${repository}:1`, noCa)).rejects.toThrow(
        `image ${repository}:1: TLS failure with https://${registry.host}: unable to verify the ` +
          `first certificate (a private CA? put it in ${empty}/${registry.host}/ca.crt)`,
      );
      const caOnly = join(dir, 'ca-only-certs.d');
      await mkdir(join(caOnly, registry.host), { recursive: true });
      await copyFile(
        join(certsDir, registry.host, 'ca.crt'),
        join(caOnly, registry.host, 'ca.crt'),
      );
      const noClient = { certsDirs: [caOnly], timeoutMs: 10_000 };
      await expect(resolveImageDigest(`${repository}:1`, noClient)).rejects.toThrow(
        `image ${repository}:1: cannot reach https://${registry.host}: other side closed (does ` +
          `it ask for a client certificate? put it in ${caOnly}/${registry.host} as client.cert ` +
          'and client.key)',
      );
    });
  });

  describe('a registry with a token service', () => {
    let registry: Registry;
    let tokens: TokenService;
    let repository: string;
    let pushed: string;
    let authFile: string;
    beforeAll(async () => {
      const key = join(dir, 'token.key');
      const cert = join(dir, 'token.crt');
      const subject = ['-subj', `/CN=${TOKEN_ISSUER}`, '-days', '1', '-keyout', key, '-out', cert];
      await execFileAsync('openssl', [
        ...'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'.split(' '),
        ...subject,
      ]);
      tokens = await startTokenService(await readFile(key, 'utf8'), await readFile(cert, 'utf8'));
      registry = await startRegistry('tokens', [
        `auth: { token: { realm: "${tokens.realm}", service: ${TOKEN_SERVICE}, ` +
          `issuer: ${TOKEN_ISSUER}, rootcertbundle: ${cert} } }`,
      ]);
      repository = `${registry.host}/podfleet/private`;
      authFile = join(dir, 'token-auth.json');
      await podmanLogin(registry.host, authFile);
      pushed = await push(`${repository}:1`, '--authfile', authFile);
    });
    afterAll(async () => {
      await tokens?.close();
    });

    it("gets a pull token for the repository with podman's login, then the digest", async () => {
      tokens.requests.length = 0;
      const access = { authFile, insecure: [registry.host], timeoutMs: 10_000 };
      expect(await resolveImageDigest(`${repository}:1`, access)).toBe(`${repository}@${pushed}`);
      expect(tokens.requests).toEqual([
        `${TOKEN_SERVICE} repository:podfleet/private:pull ci:lab-secret`,
      ]);
    });

    it("gives the registry's message when an anonymous token does not reach the repository", async () => {
      const access = { insecure: [registry.host], timeoutMs: 10_000 };
      await expect(resolveImageDigest(`${repository}:1`, access)).rejects.toThrow(
        `image ${repository}:1: ${registry.host} answered 401 Unauthorized for manifest 1: ` +
          'authentication required (anonymous: no auth file (PODFLEET_REGISTRY_AUTH_FILE))',
      );
    });

    it("gives the token service's message when it refuses the login", async () => {
      const wrong = join(dir, 'wrong-token-auth.json');
      const auth = Buffer.from('ci:not-the-secret').toString('base64');
      await writeFile(wrong, JSON.stringify({ auths: { [registry.host]: { auth } } }));
      const access = { authFile: wrong, insecure: [registry.host], timeoutMs: 10_000 };
      await expect(resolveImageDigest(`${repository}:1`, access)).rejects.toThrow(
        `image ${repository}:1: token service ${tokens.realm} answered 401 Unauthorized: ` +
          `incorrect username or password (login ${registry.host} of ${wrong})`,
      );
    });
  });
});
