import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ImageResolveError,
  loadRegistryAccess,
  resolveImageDigest,
  type RegistryAccess,
} from './image-digest.js';
import { makePrivateCa, type PrivateCa } from '../broker-access/private-ca.js';

// A fake registry speaking the bits of the distribution API v2 the resolver uses; the real one
// (Debian's docker-registry) is in image-digest.int.test.ts.
const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:0', size: 2 },
  layers: [],
});
const DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;
const execFileAsync = promisify(execFile);
const OTHER = `sha256:${'b'.repeat(64)}`;
const basic = (user: string, password: string) =>
  Buffer.from(`${user}:${password}`).toString('base64');

type Handler = (req: IncomingMessage, res: ServerResponse, host: string) => void;

interface FakeRegistry {
  host: string;
  requests: { method: string; url: string; authorization?: string; accept?: string }[];
  close(): Promise<void>;
}

async function fakeRegistry(handle: Handler): Promise<FakeRegistry> {
  const requests: FakeRegistry['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({
      method: req.method!,
      url: req.url!,
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers.accept ? { accept: req.headers.accept } : {}),
    });
    handle(req, res, host);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { host, requests, close };
}

/** A manifest answer: HEAD gets headers only, GET the body too; `digest: null` leaves it out. */
function manifest(req: IncomingMessage, res: ServerResponse, digest: string | null = DIGEST) {
  res.writeHead(200, {
    'content-type': 'application/vnd.oci.image.manifest.v1+json',
    'content-length': Buffer.byteLength(MANIFEST),
    ...(digest ? { 'docker-content-digest': digest } : {}),
  });
  res.end(req.method === 'GET' ? MANIFEST : undefined);
}

function registryError(res: ServerResponse, status: number, code: string, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message, detail: null }] }));
}

let dir: string;
let registries: FakeRegistry[] = [];

async function start(handle: Handler): Promise<FakeRegistry> {
  const registry = await fakeRegistry(handle);
  registries.push(registry);
  return registry;
}

async function authFile(auths: Record<string, { auth: string }>): Promise<string> {
  const path = join(dir, `auth-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify({ auths }));
  return path;
}

const plainHttp = (registry: FakeRegistry, more: RegistryAccess = {}): RegistryAccess => ({
  insecure: [registry.host],
  timeoutMs: 2000,
  ...more,
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'podfleet-image-digest-'));
});
afterEach(async () => {
  await Promise.all(registries.map((registry) => registry.close()));
  registries = [];
  vi.unstubAllGlobals();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveImageDigest', () => {
  it('returns an image that names a digest as it is, asking no registry', async () => {
    const registry = await start((req, res) => manifest(req, res));
    const image = `${registry.host}/acme/web:1.4@${OTHER}`;
    expect(await resolveImageDigest(image, plainHttp(registry))).toBe(image);
    expect(registry.requests).toEqual([]);
  });

  it('pins a tag by the Docker-Content-Digest of a HEAD, asking for every manifest type', async () => {
    const registry = await start((req, res) => manifest(req, res));
    const image = `${registry.host}/acme/web:1.4`;
    expect(await resolveImageDigest(image, plainHttp(registry))).toBe(
      `${registry.host}/acme/web@${DIGEST}`,
    );
    expect(registry.requests).toHaveLength(1);
    expect(registry.requests[0]).toMatchObject({
      method: 'HEAD',
      url: '/v2/acme/web/manifests/1.4',
    });
    const accept = registry.requests[0]!.accept!.split(', ');
    expect(accept.sort()).toEqual([
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
    ]);
  });

  it('hashes the GET body when the registry sends no digest header, tag latest by default', async () => {
    const registry = await start((req, res) => manifest(req, res, null));
    expect(await resolveImageDigest(`${registry.host}/acme/web`, plainHttp(registry))).toBe(
      `${registry.host}/acme/web@${DIGEST}`,
    );
    expect(registry.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'HEAD /v2/acme/web/manifests/latest',
      'GET /v2/acme/web/manifests/latest',
    ]);
  });

  it('falls back to GET when HEAD is not allowed', async () => {
    const registry = await start((req, res) => {
      if (req.method === 'HEAD') res.writeHead(405).end();
      else manifest(req, res);
    });
    expect(await resolveImageDigest(`${registry.host}/acme/web:2`, plainHttp(registry))).toBe(
      `${registry.host}/acme/web@${DIGEST}`,
    );
  });

  it('refuses a GET whose digest header is not the digest of the manifest it sent', async () => {
    const registry = await start((req, res) => {
      if (req.method === 'HEAD') res.writeHead(405).end();
      else manifest(req, res, OTHER);
    });
    await expect(
      resolveImageDigest(`${registry.host}/acme/web:2`, plainHttp(registry)),
    ).rejects.toThrow(`sent Docker-Content-Digest ${OTHER} for a manifest of ${DIGEST}`);
  });

  describe('docker.io names', () => {
    it.each([
      ['busybox', 'library/busybox/manifests/latest', 'busybox'],
      ['busybox:1.36', 'library/busybox/manifests/1.36', 'busybox'],
      ['docker.io/busybox:1.36', 'library/busybox/manifests/1.36', 'docker.io/busybox'],
      ['docker.io/library/busybox:1', 'library/busybox/manifests/1', 'docker.io/library/busybox'],
      ['index.docker.io/acme/web:1', 'acme/web/manifests/1', 'index.docker.io/acme/web'],
      ['acme/web:1.4', 'acme/web/manifests/1.4', 'acme/web'],
    ])('%s is asked of registry-1.docker.io as %s', async (image, path, pinned) => {
      const urls: string[] = [];
      vi.stubGlobal('fetch', async (url: string) => {
        urls.push(url);
        return new Response(null, { status: 200, headers: { 'docker-content-digest': DIGEST } });
      });
      expect(await resolveImageDigest(image, {})).toBe(`${pinned}@${DIGEST}`);
      expect(urls).toEqual([`https://registry-1.docker.io/v2/${path}`]);
    });
  });

  describe('authorization', () => {
    /** A registry with a token service at /token that gives `token` to whoever `login` allows. */
    function tokenRegistry(login: (authorization: string | undefined) => string | undefined) {
      return start((req, res, host) => {
        const url = new URL(req.url!, `http://${host}`);
        if (url.pathname === '/token') {
          const token = login(req.headers.authorization);
          if (!token) {
            res.writeHead(401, { 'content-type': 'application/json' });
            return res.end(JSON.stringify({ details: 'incorrect username or password' }));
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ token, expires_in: 300 }));
        }
        if (req.headers.authorization === 'Bearer pull-acme-web') return manifest(req, res);
        res.setHeader(
          'www-authenticate',
          `Bearer realm="http://${host}/token",service="fake-registry",scope="repository:acme/web:pull"`,
        );
        registryError(res, 401, 'UNAUTHORIZED', 'authentication required');
      });
    }

    it('gets a Bearer token from the realm with the auth file login, then the manifest', async () => {
      const registry = await tokenRegistry((authorization) =>
        authorization === `Basic ${basic('ci', 's3cret')}` ? 'pull-acme-web' : undefined,
      );
      const file = await authFile({ [registry.host]: { auth: basic('ci', 's3cret') } });
      const image = `${registry.host}/acme/web:1.4`;
      expect(await resolveImageDigest(image, plainHttp(registry, { authFile: file }))).toBe(
        `${registry.host}/acme/web@${DIGEST}`,
      );
      expect(registry.requests.map((r) => `${r.method} ${r.url} ${r.authorization}`)).toEqual([
        'HEAD /v2/acme/web/manifests/1.4 undefined',
        `GET /token?service=fake-registry&scope=repository%3Aacme%2Fweb%3Apull Basic ${basic('ci', 's3cret')}`,
        'HEAD /v2/acme/web/manifests/1.4 Bearer pull-acme-web',
      ]);
    });

    it('asks the realm anonymously when the auth file has no entry for the registry', async () => {
      const registry = await tokenRegistry((authorization) =>
        authorization ? undefined : 'pull-acme-web',
      );
      const file = await authFile({ 'quay.io': { auth: basic('ci', 's3cret') } });
      const image = `${registry.host}/acme/web:1.4`;
      expect(await resolveImageDigest(image, plainHttp(registry, { authFile: file }))).toBe(
        `${registry.host}/acme/web@${DIGEST}`,
      );
      expect(registry.requests[1]).toMatchObject({ url: expect.stringMatching(/^\/token\?/) });
      expect(registry.requests[1]!.authorization).toBeUndefined();
    });

    it('names the token service and its words when it refuses the login', async () => {
      const registry = await tokenRegistry(() => undefined);
      const file = await authFile({ [registry.host]: { auth: basic('ci', 'wrong') } });
      const image = `${registry.host}/acme/web:1.4`;
      const error = await resolveImageDigest(image, plainHttp(registry, { authFile: file })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ImageResolveError);
      expect((error as Error).message).toBe(
        `image ${image}: token service http://${registry.host}/token answered 401 Unauthorized: ` +
          `incorrect username or password (login ${registry.host} of ${file})`,
      );
    });

    /** A registry with Basic auth (htpasswd) for `ci:s3cret`. */
    const basicRegistry = () =>
      start((req, res) => {
        if (req.headers.authorization === `Basic ${basic('ci', 's3cret')}`)
          return manifest(req, res);
        res.setHeader('www-authenticate', 'Basic realm="fake-registry"');
        registryError(res, 401, 'UNAUTHORIZED', 'authentication required');
      });

    it('answers a Basic challenge with the most specific auth file entry', async () => {
      const registry = await basicRegistry();
      const file = await authFile({
        [registry.host]: { auth: basic('ci', 'wrong') },
        [`${registry.host}/acme`]: { auth: basic('ci', 's3cret') },
        [`${registry.host}/other`]: { auth: basic('ci', 'wrong') },
      });
      expect(
        await resolveImageDigest(
          `${registry.host}/acme/web:1.4`,
          plainHttp(registry, { authFile: file }),
        ),
      ).toBe(`${registry.host}/acme/web@${DIGEST}`);
    });

    it('says that a login is needed and none is configured', async () => {
      const registry = await basicRegistry();
      const image = `${registry.host}/acme/web:1.4`;
      await expect(resolveImageDigest(image, plainHttp(registry))).rejects.toThrow(
        `image ${image}: ${registry.host} asks for a login and no auth file (PODFLEET_REGISTRY_AUTH_FILE)`,
      );
      const file = await authFile({});
      await expect(
        resolveImageDigest(image, plainHttp(registry, { authFile: file })),
      ).rejects.toThrow(`asks for a login and ${file} has no entry for ${registry.host}`);
    });

    it("gives the registry's 401 message and whose login it refused", async () => {
      const registry = await basicRegistry();
      const file = await authFile({ [registry.host]: { auth: basic('ci', 'wrong') } });
      const image = `${registry.host}/acme/web:1.4`;
      await expect(
        resolveImageDigest(image, plainHttp(registry, { authFile: file })),
      ).rejects.toThrow(
        `image ${image}: ${registry.host} answered 401 Unauthorized for manifest 1.4: ` +
          `authentication required (login ${registry.host} of ${file})`,
      );
    });

    it("gives the registry's 403 message", async () => {
      const registry = await start((_req, res) =>
        registryError(res, 403, 'DENIED', 'requested access to the resource is denied'),
      );
      await expect(
        resolveImageDigest(`${registry.host}/acme/web:1.4`, plainHttp(registry)),
      ).rejects.toThrow(
        `answered 403 Forbidden for manifest 1.4: requested access to the resource is denied ` +
          `(anonymous: no auth file (PODFLEET_REGISTRY_AUTH_FILE))`,
      );
    });

    it('names an unreadable auth file', async () => {
      const registry = await basicRegistry();
      const file = join(dir, 'missing.json');
      await expect(
        resolveImageDigest(`${registry.host}/acme/web:1`, plainHttp(registry, { authFile: file })),
      ).rejects.toThrow(`auth file ${file}: cannot read (ENOENT)`);
    });
  });

  describe('failures', () => {
    it('says manifest unknown for a tag the registry does not have', async () => {
      const registry = await start((_req, res) =>
        registryError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown'),
      );
      const image = `${registry.host}/acme/web:9.9`;
      await expect(resolveImageDigest(image, plainHttp(registry))).rejects.toThrow(
        new ImageResolveError(
          image,
          `${registry.host} answered 404 Not Found for manifest 9.9: manifest unknown`,
        ),
      );
    });

    it('says the connection was refused', async () => {
      const registry = await start((req, res) => manifest(req, res));
      await registry.close();
      const image = `${registry.host}/acme/web:1`;
      await expect(resolveImageDigest(image, plainHttp(registry))).rejects.toThrow(
        `image ${image}: connection refused by http://${registry.host}`,
      );
    });

    it('says TLS failed, and why, when a plain-http registry is not listed insecure', async () => {
      const registry = await start((req, res) => manifest(req, res));
      const image = `${registry.host}/acme/web:1`;
      await expect(resolveImageDigest(image, { timeoutMs: 2000 })).rejects.toThrow(
        `image ${image}: TLS failure with https://${registry.host}: wrong version number ` +
          '(plain http? list it in PODFLEET_REGISTRY_INSECURE)',
      );
    });

    it('says TLS failed when the certificate is not trusted', async () => {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      const subject = ['-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', key, '-out', cert];
      await execFileAsync('openssl', [
        ...'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'.split(' '),
        ...subject,
      ]);
      const server = createHttpsServer(
        { key: await readFile(key), cert: await readFile(cert) },
        (req, res) => manifest(req, res),
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const access = { timeoutMs: 2000, certsDirs: [join(dir, 'no-certs.d')] };
        await expect(resolveImageDigest(`${host}/acme/web:1`, access)).rejects.toThrow(
          `TLS failure with https://${host}: self-signed certificate ` +
            `(a private CA? put it in ${dir}/no-certs.d/${host}/ca.crt)`,
        );
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });

    describe('certificates from certs.d, as Podman reads them', () => {
      /** An https registry whose certificate a private CA signed; `clients`: a CA it asks for. */
      async function tlsRegistry(clients?: PrivateCa) {
        const server = createHttpsServer(
          {
            key: await readFile(serverCa.keyFile),
            cert: await readFile(serverCa.certFile),
            ...(clients
              ? { requestCert: true, rejectUnauthorized: true, ca: await readFile(clients.caFile) }
              : {}),
          },
          (req, res) => {
            const peer = (req.socket as TLSSocket).getPeerCertificate();
            subjects.push(String(peer.subject?.CN ?? ''));
            manifest(req, res);
          },
        );
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        servers.push(server);
        return `127.0.0.1:${(server.address() as AddressInfo).port}`;
      }
      /** A certs.d root with `files` (name → source file) in the directory of `host`. */
      async function certsDir(host: string, files: Record<string, string>) {
        const root = await mkdtemp(join(dir, 'certs.d-'));
        await mkdir(join(root, host));
        for (const [name, from] of Object.entries(files))
          await copyFile(from, join(root, host, name));
        return root;
      }
      let serverCa: PrivateCa;
      let clientCa: PrivateCa;
      let servers: Server[] = [];
      const subjects: string[] = [];
      beforeAll(async () => {
        serverCa = makePrivateCa(await mkdtemp(join(dir, 'server-ca-')), 'registry');
        clientCa = makePrivateCa(await mkdtemp(join(dir, 'client-ca-')), 'devices');
      });
      afterEach(() => {
        for (const server of servers) {
          server.closeAllConnections();
          server.close();
        }
        servers = [];
      });

      it('trusts the CA in the registry’s directory, beside the system’s', async () => {
        const host = await tlsRegistry();
        const root = await certsDir(host, { 'ca.crt': serverCa.caFile });
        const access = { timeoutMs: 5000, certsDirs: [join(dir, 'absent'), root] };
        expect(await resolveImageDigest(`${host}/acme/web:1`, access)).toBe(
          `${host}/acme/web@${DIGEST}`,
        );
        // Another registry's directory is not this one's.
        const other = await certsDir('127.0.0.1:1', { 'ca.crt': serverCa.caFile });
        await expect(
          resolveImageDigest(`${host}/acme/web:1`, { timeoutMs: 5000, certsDirs: [other] }),
        ).rejects.toThrow(`(a private CA? put it in ${other}/${host}/ca.crt)`);
      });

      it('keeps trusting NODE_EXTRA_CA_CERTS beside the directory’s CAs', async () => {
        const host = await tlsRegistry();
        const root = await certsDir(host, { 'other.crt': clientCa.caFile });
        const access = { timeoutMs: 5000, certsDirs: [root] };
        await expect(resolveImageDigest(`${host}/acme/web:1`, access)).rejects.toThrow(
          `(certificates from ${root}/${host})`,
        );
        vi.stubEnv('NODE_EXTRA_CA_CERTS', serverCa.caFile);
        try {
          expect(await resolveImageDigest(`${host}/acme/web:1`, access)).toBe(
            `${host}/acme/web@${DIGEST}`,
          );
        } finally {
          vi.unstubAllEnvs();
        }
      });

      it('presents the client certificate (.cert with its .key) to a registry that asks for one', async () => {
        const host = await tlsRegistry(clientCa);
        const root = await certsDir(host, {
          'ca.crt': serverCa.caFile,
          'client.cert': clientCa.certFile,
          'client.key': clientCa.keyFile,
        });
        const access = { timeoutMs: 5000, certsDirs: [root] };
        expect(await resolveImageDigest(`${host}/acme/web:1`, access)).toBe(
          `${host}/acme/web@${DIGEST}`,
        );
        expect(subjects.at(-1)).toBe('broker'); // the client CA's certificate, as makePrivateCa names it

        const noClient = await certsDir(host, { 'ca.crt': serverCa.caFile });
        await expect(
          resolveImageDigest(`${host}/acme/web:1`, { timeoutMs: 5000, certsDirs: [noClient] }),
        ).rejects.toThrow(
          `image ${host}/acme/web:1: cannot reach https://${host}: other side closed ` +
            `(does it ask for a client certificate? put it in ${noClient}/${host} as client.cert and client.key)`,
        );
      });

      it('refuses a key without its certificate, naming the directory', async () => {
        const host = await tlsRegistry();
        const root = await certsDir(host, {
          'ca.crt': serverCa.caFile,
          'client.key': clientCa.keyFile,
        });
        await expect(
          resolveImageDigest(`${host}/acme/web:1`, { timeoutMs: 5000, certsDirs: [root] }),
        ).rejects.toThrow(
          `image ${host}/acme/web:1: certificates ${root}/${host}: client.key without client.cert`,
        );
      });
    });

    it('gives up after timeoutMs when the registry does not answer', async () => {
      const registry = await start(() => undefined);
      const started = Date.now();
      await expect(
        resolveImageDigest(`${registry.host}/acme/web:1`, plainHttp(registry, { timeoutMs: 200 })),
      ).rejects.toThrow(`no answer from http://${registry.host} within 200 ms`);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('refuses what is not an image reference', async () => {
      await expect(resolveImageDigest('Acme/Web:1', {})).rejects.toThrow(
        'image Acme/Web:1: not an image reference',
      );
    });
  });
});

describe('loadRegistryAccess', () => {
  it('reads the auth file and the insecure hosts', async () => {
    const file = await authFile({ 'registry.example': { auth: basic('ci', 's3cret') } });
    expect(
      loadRegistryAccess({
        PODFLEET_REGISTRY_AUTH_FILE: file,
        PODFLEET_REGISTRY_INSECURE: ' 10.213.0.1:5000, localhost:5000 ,,',
        PATH: '/usr/bin',
      }),
    ).toEqual({ authFile: file, insecure: ['10.213.0.1:5000', 'localhost:5000'] });
    expect(loadRegistryAccess({})).toEqual({});
    expect(loadRegistryAccess({ PODFLEET_REGISTRY_CERTS_DIR: dir })).toEqual({
      certsDirs: [dir],
    });
  });

  it.each([
    [{ PODFLEET_REGISTRY_INSECURE: 'http://10.0.0.1:5000' }, /^PODFLEET_REGISTRY_INSECURE: http:/],
    [{ PODFLEET_REGISTRY_INSECURE: 'myregistry' }, /^PODFLEET_REGISTRY_INSECURE: myregistry is/],
    [{ PODFLEET_REGISTRY_AUTH_FILE: 'auth.json' }, /^PODFLEET_REGISTRY_AUTH_FILE: must be an abs/],
    [
      { PODFLEET_REGISTRY_AUTH_FILE: '/nonexistent/auth.json' },
      /auth.json: cannot read \(ENOENT\)$/,
    ],
    [{ PODFLEET_REGISTRY_CERTS_DIR: 'certs.d' }, /^PODFLEET_REGISTRY_CERTS_DIR: must be an abs/],
    [
      { PODFLEET_REGISTRY_CERTS_DIR: '/nonexistent/certs.d' },
      /^PODFLEET_REGISTRY_CERTS_DIR: \/nonexistent\/certs.d: cannot read \(ENOENT\)$/,
    ],
  ])('names the variable: %j', (env, message) => {
    expect(() => loadRegistryAccess(env)).toThrow(message);
  });

  it('refuses an auth file that is not containers-auth.json', async () => {
    const file = join(dir, 'bad-auth.json');
    await writeFile(
      file,
      JSON.stringify({ auths: { 'registry.example': { auth: 'bm9jb2xvbg' } } }),
    );
    expect(() => loadRegistryAccess({ PODFLEET_REGISTRY_AUTH_FILE: file })).toThrow(
      `PODFLEET_REGISTRY_AUTH_FILE: ${file}: not containers-auth.json: ` +
        'auths.registry.example.auth: not base64 of user:password',
    );
  });
});
