import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
// Node's fetch is undici's; its Agent carries per-registry TLS settings as fetch's `dispatcher`.
import { Agent } from 'undici';
import { z } from 'zod';
import {
  formatIssues,
  parseImageReference,
  withDigest,
  type ImageReference,
} from '@podfleet/shared';
import { ConfigError } from '../serve/config.js';

/** How the controller reaches registries: the same credentials and insecure hosts as devices. */
export interface RegistryAccess {
  /**
   * containers-auth.json, the file `podman login` writes (`{"auths": {"host[:port]": {"auth":
   * base64(user:password)}}}`), read again at each resolve that is asked for a login.
   */
  authFile?: string;
  /** Registry `host[:port]`s spoken to over plain http (registries.conf `insecure = true`). */
  insecure?: readonly string[];
  /**
   * containers-certs.d(5) roots, as Podman looks them up: the first with a `host[:port]` directory
   * gives that registry's CAs (`*.crt`, beside the system ones) and client certificate (`*.cert`
   * with its `*.key`). Default: /etc/containers/certs.d, then /etc/docker/certs.d.
   */
  certsDirs?: readonly string[];
  /** For the whole resolve, token request included. */
  timeoutMs?: number;
}

/** Why a tag could not be resolved, as one line naming the image: the rollout's stop reason. */
export class ImageResolveError extends Error {
  constructor(
    readonly image: string,
    readonly reason: string,
  ) {
    super(`image ${image}: ${reason}`);
    this.name = 'ImageResolveError';
  }
}

const DEFAULT_TIMEOUT_MS = 15_000;
const CERTS_DIRS = ['/etc/containers/certs.d', '/etc/docker/certs.d'];
const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
const SHA256 = /^sha256:[a-f0-9]{64}$/;

/**
 * The image pinned by digest (`registry/repo@sha256:…`, as `withDigest` writes pins), its tag
 * looked up once in the registry (HTTP API v2) so that every device of a rollout gets the same
 * manifest. An image that already names a digest is returned as it is, without asking anyone.
 */
export async function resolveImageDigest(image: string, access: RegistryAccess): Promise<string> {
  const reference = parseImageReference(image);
  if (!reference) throw new ImageResolveError(image, 'not an image reference');
  if (reference.digest) return image;
  const session = new RegistrySession(image, reference, access);
  try {
    return withDigest(image, await session.manifestDigest(reference.tag ?? 'latest'));
  } finally {
    await session.close();
  }
}

/** One resolve's conversation with a registry: its endpoint, deadline and authorization. */
class RegistrySession {
  /** The registry as auth files and the insecure list name it. */
  private readonly host: string;
  private readonly repository: string;
  private readonly origin: string;
  private readonly timeoutMs: number;
  private readonly signal: AbortSignal;
  private authorization: string | undefined;
  /** The auth file entry the authorization came from, for the error when it is refused. */
  private login: string | undefined;
  /** The certs.d directory of the registry, and the TLS settings it gave; none without one. */
  private tls: { dir: string; agent: Agent; client: boolean } | undefined;

  constructor(
    private readonly image: string,
    reference: ImageReference,
    private readonly access: RegistryAccess,
  ) {
    // containers/image: no registry means docker.io, whose API is registry-1.docker.io and whose
    // one-component names are the official images under library/.
    const registry = reference.registry ?? 'docker.io';
    this.host = registry === 'index.docker.io' ? 'docker.io' : registry;
    const dockerHub = this.host === 'docker.io';
    const official = dockerHub && !reference.repository.includes('/');
    this.repository = official ? `library/${reference.repository}` : reference.repository;
    const scheme = access.insecure?.includes(this.host) ? 'http' : 'https';
    this.origin = `${scheme}://${dockerHub ? 'registry-1.docker.io' : this.host}`;
    this.timeoutMs = access.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.signal = AbortSignal.timeout(this.timeoutMs);
  }

  /** HEAD for the Docker-Content-Digest header; GET when HEAD does not give it. */
  async manifestDigest(tag: string): Promise<string> {
    await this.loadCertificates();
    const url = `${this.origin}/v2/${this.repository}/manifests/${tag}`;
    const head = await this.send(url, 'HEAD');
    const headDigest = head.headers.get('docker-content-digest');
    if (head.ok && headDigest && SHA256.test(headDigest)) return headDigest;
    // A HEAD answer has no body: an error's message, or a digest to compute, needs the GET.
    const got = await this.send(url, 'GET');
    const body = await this.read(got, url);
    if (!got.ok) {
      const denied = got.status === 401 || got.status === 403 ? this.whose() : '';
      throw this.fail(
        `${this.host} answered ${statusOf(got)} for manifest ${tag}: ${reasonIn(body)}${denied}`,
      );
    }
    const computed = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const header = got.headers.get('docker-content-digest');
    if (!header) return computed;
    if (!SHA256.test(header)) {
      throw this.fail(`${this.host} gave digest ${header}; pins are sha256`);
    }
    if (header !== computed) {
      throw this.fail(
        `${this.host} sent Docker-Content-Digest ${header} for a manifest of ${computed}`,
      );
    }
    return header;
  }

  /** One request; after a 401 challenge, authorizes (once per resolve) and sends it again. */
  private async send(url: string, method: 'HEAD' | 'GET'): Promise<Response> {
    const request = () =>
      this.guard(url, () =>
        fetch(url, {
          method,
          headers: {
            accept: MANIFEST_TYPES,
            ...(this.authorization ? { authorization: this.authorization } : {}),
          },
          signal: this.signal,
          ...this.dispatcher(),
        }),
      );
    const response = await request();
    if (response.status !== 401 || this.authorization) return response;
    await response.body?.cancel();
    this.authorization = await this.authorize(response.headers.get('www-authenticate') ?? '', url);
    return request();
  }

  /** The Authorization header a challenge asks for: Basic from the auth file, or a Bearer token. */
  private async authorize(challenge: string, url: string): Promise<string> {
    const { scheme, params } = parseChallenge(challenge);
    const basic = await this.credentials();
    if (scheme === 'basic') {
      if (!basic) throw this.fail(`${this.host} asks for a login and ${this.noLogin()}`);
      return `Basic ${basic}`;
    }
    if (scheme !== 'bearer' || !params.realm) {
      throw this.fail(`${this.host} answered 401 with no usable challenge (${oneLine(challenge)})`);
    }
    // Docker's token protocol: GET realm?service=…&scope=…, with Basic credentials if we have any.
    const realm = new URL(params.realm, url);
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? `repository:${this.repository}:pull`);
    const where = `token service ${realm.origin}${realm.pathname}`;
    const answer = await this.guard(realm.href, () =>
      fetch(realm, {
        headers: basic ? { authorization: `Basic ${basic}` } : {},
        signal: this.signal,
        ...this.dispatcher(),
      }),
    );
    const body = await this.read(answer, realm.href);
    if (!answer.ok) {
      throw this.fail(`${where} answered ${statusOf(answer)}: ${reasonIn(body)}${this.whose()}`);
    }
    const parsed = TokenAnswer.safeParse(parseJson(body));
    const token = parsed.success ? (parsed.data.token ?? parsed.data.access_token) : undefined;
    if (!token) throw this.fail(`${where} answered without a token`);
    return `Bearer ${token}`;
  }

  /** base64(user:password) of the auth file's entry for this repository or its registry. */
  private async credentials(): Promise<string | undefined> {
    const file = this.access.authFile;
    if (!file) return undefined;
    let logins: Map<string, string>;
    try {
      logins = loginsIn(await readFile(file, 'utf8'));
    } catch (error) {
      throw this.fail(`auth file ${file}: ${fileProblem(error)}`);
    }
    // containers-auth.json(5): the most specific key wins, `host/namespace/repo` before `host`.
    const parts = `${this.host}/${this.repository}`.split('/');
    for (let length = parts.length; length > 0; length--) {
      const key = parts.slice(0, length).join('/');
      const login = logins.get(key);
      if (login) {
        this.login = `${key} of ${file}`;
        return login;
      }
    }
    return undefined;
  }

  /**
   * The registry's certs.d directory, as Podman reads it: CAs added to the system's, and a client
   * certificate. Its token service is spoken to with the same settings, as Podman does.
   */
  private async loadCertificates(): Promise<void> {
    for (const root of this.access.certsDirs ?? CERTS_DIRS) {
      const dir = join(root, this.host);
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw this.fail(`certificates ${dir}: ${fileProblem(error)}`);
      }
      const read = async (name: string) => {
        try {
          return await readFile(join(dir, name), 'utf8');
        } catch (error) {
          throw this.fail(`certificates ${dir}: ${name}: ${fileProblem(error)}`);
        }
      };
      const ca: string[] = [];
      let client: { cert: string; key: string } | undefined;
      for (const name of names) {
        if (name.endsWith('.crt')) ca.push(await read(name));
        const base = name.replace(/\.(cert|key)$/, '');
        if (base === name) continue;
        const pair = [`${base}.cert`, `${base}.key`];
        const missing = pair.find((file) => !names.includes(file));
        if (missing) throw this.fail(`certificates ${dir}: ${name} without ${missing}`);
        if (name.endsWith('.cert'))
          client = { cert: await read(pair[0]!), key: await read(pair[1]!) };
      }
      // Given CAs replace Node's defaults: the defaults, and NODE_EXTRA_CA_CERTS, go first again.
      const connect = {
        ...(ca.length > 0 ? { ca: [...rootCertificates, ...(await extraCas()), ...ca] } : {}),
        ...client,
      };
      this.tls = { dir, agent: new Agent({ connect }), client: client !== undefined };
      return;
    }
  }

  private dispatcher(): { dispatcher?: Agent } {
    return this.tls ? { dispatcher: this.tls.agent } : {};
  }

  async close(): Promise<void> {
    await this.tls?.agent.close();
  }

  /** A fetch whose network failure becomes this image's one-line error. */
  private async guard(url: string, request: () => Promise<Response>): Promise<Response> {
    try {
      return await request();
    } catch (error) {
      throw this.fail(networkProblem(error, url, this.timeoutMs, this.certsHint()));
    }
  }

  /** Where the registry's certificates came from, or would go: for the hint of a TLS failure. */
  private certsHint(): CertsHint {
    if (this.tls) return { dir: this.tls.dir, used: true, client: this.tls.client };
    const dir = join((this.access.certsDirs ?? CERTS_DIRS)[0]!, this.host);
    return { dir, used: false, client: false };
  }

  private async read(response: Response, url: string): Promise<Buffer> {
    try {
      return Buffer.from(await response.arrayBuffer());
    } catch (error) {
      throw this.fail(networkProblem(error, url, this.timeoutMs, this.certsHint()));
    }
  }

  private whose(): string {
    return this.login ? ` (login ${this.login})` : ` (anonymous: ${this.noLogin()})`;
  }

  private noLogin(): string {
    return this.access.authFile
      ? `${this.access.authFile} has no entry for ${this.host}`
      : 'no auth file (PODFLEET_REGISTRY_AUTH_FILE)';
  }

  private fail(reason: string): ImageResolveError {
    return new ImageResolveError(this.image, reason);
  }
}

const TokenAnswer = z.object({ token: z.string().optional(), access_token: z.string().optional() });

/** `Bearer realm="…",service="…",scope="…"` (RFC 7235; scope may hold commas, inside quotes). */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const scheme = /^\s*(\w+)/.exec(header)?.[1]?.toLowerCase() ?? '';
  const params: Record<string, string> = {};
  for (const [, name, quoted, bare] of header.matchAll(
    /(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g,
  )) {
    params[name!.toLowerCase()] = quoted?.replace(/\\(.)/g, '$1') ?? bare ?? '';
  }
  return { scheme, params };
}

const AuthFile = z.object({
  auths: z
    .record(
      z.string(),
      z.looseObject({
        auth: z
          .string()
          .refine((value) => Buffer.from(value, 'base64').toString().includes(':'), {
            message: 'not base64 of user:password',
          })
          .optional(),
      }),
    )
    .optional(),
});

/** An auth file's logins by key: `host[:port][/namespace…]` → base64(user:password). */
function loginsIn(text: string): Map<string, string> {
  const json = parseJson(Buffer.from(text));
  if (json === undefined) throw new Error('not JSON');
  const parsed = AuthFile.safeParse(json);
  if (!parsed.success) {
    throw new Error(`not containers-auth.json: ${formatIssues(parsed.error)[0]}`);
  }
  const logins = new Map<string, string>();
  for (const [key, entry] of Object.entries(parsed.data.auths ?? {})) {
    // Docker's legacy keys are URLs (https://index.docker.io/v1/) of which only the host counts.
    const bare = /^https?:\/\//.test(key) ? key.replace(/^https?:\/\//, '').split('/')[0]! : key;
    const normalized = bare.replace(/^index\.docker\.io(?=\/|$)/, 'docker.io');
    if (entry.auth && !logins.has(normalized)) logins.set(normalized, entry.auth);
  }
  return logins;
}

const RegistryErrors = z.object({
  errors: z.array(z.object({ code: z.string().optional(), message: z.string().optional() })),
});
const OtherError = z.object({
  details: z.string().optional(),
  error: z.string().optional(),
  message: z.string().optional(),
});

/** The registry's own words: API v2 `errors[].message`, a token service's `details`, or text. */
function reasonIn(body: Buffer): string {
  const json = parseJson(body);
  const v2 = RegistryErrors.safeParse(json);
  if (v2.success && v2.data.errors.length > 0) {
    return v2.data.errors.map((e) => e.message ?? e.code ?? 'error').join('; ');
  }
  const other = OtherError.safeParse(json);
  const said = other.success
    ? (other.data.details ?? other.data.error ?? other.data.message)
    : undefined;
  return oneLine(said ?? body.toString()) || 'no message';
}

/** `404 Not Found`: the status line as the registry sent it. */
function statusOf(response: Response): string {
  return response.statusText ? `${response.status} ${response.statusText}` : `${response.status}`;
}

/** NODE_EXTRA_CA_CERTS, which Node adds to its defaults; unreadable, Node itself only warns. */
async function extraCas(): Promise<string[]> {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return [];
  try {
    return [await readFile(file, 'utf8')];
  } catch {
    return [];
  }
}

interface CertsHint {
  dir: string;
  /** Whether the TLS settings came from it. */
  used: boolean;
  /** Whether a client certificate was presented. */
  client: boolean;
}

function networkProblem(error: unknown, url: string, timeoutMs: number, certs: CertsHint): string {
  const { protocol, host, hostname } = new URL(url);
  const at = `${protocol}//${host}`;
  const name = error instanceof Error ? error.name : '';
  if (name === 'TimeoutError' || name === 'AbortError') {
    return `no answer from ${at} within ${timeoutMs} ms`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const code = codeOf(cause);
  const detail = oneLine(cause?.message ?? String(error));
  if (code === 'ECONNREFUSED') return `connection refused by ${at}`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve ${hostname}`;
  if (/SSL|TLS|EPROTO/.test(code)) {
    // OpenSSL's own text is `…:SSL routines:ssl3_get_record:wrong version number:…`.
    const reason = /SSL routines:[^:]*:([^:]+)/.exec(detail)?.[1] ?? detail;
    const plain = /wrong version number|packet length/.test(reason);
    const hint = plain
      ? ' (plain http? list it in PODFLEET_REGISTRY_INSECURE)'
      : /certificate required|handshake failure/.test(reason)
        ? ` (${clientHint(certs)})`
        : '';
    return `TLS failure with ${at}: ${reason}${hint}`;
  }
  // TLS 1.3: a registry that wants a client certificate closes the connection after the handshake.
  if (protocol === 'https:' && /other side closed|socket hang up/.test(detail) && !certs.client) {
    return `cannot reach ${at}: ${detail} (${clientHint(certs)})`;
  }
  if (/CERT|UNABLE_TO_VERIFY/.test(code)) {
    const hint = certs.used
      ? `certificates from ${certs.dir}`
      : `a private CA? put it in ${certs.dir}/ca.crt`;
    return `TLS failure with ${at}: ${detail} (${hint})`;
  }
  return `cannot reach ${at}: ${detail}`;
}

function clientHint(certs: CertsHint): string {
  return certs.client
    ? `client certificate from ${certs.dir}`
    : `does it ask for a client certificate? put it in ${certs.dir} as client.cert and client.key`;
}

/** A Node system error's code; undici wraps several address attempts in an AggregateError. */
function codeOf(error: Error | undefined): string {
  if (!error) return '';
  const code = (error as NodeJS.ErrnoException).code;
  if (code) return code;
  const first = error instanceof AggregateError ? (error.errors[0] as unknown) : undefined;
  return first instanceof Error ? codeOf(first) : '';
}

function fileProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ? `cannot read (${code})` : error instanceof Error ? error.message : String(error);
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString());
  } catch {
    return undefined;
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

const RegistryEnv = z.object({
  /** The auth file devices' Podman uses (`podman login --authfile`), for private registries. */
  PODFLEET_REGISTRY_AUTH_FILE: z
    .string()
    .trim()
    .startsWith('/', { message: 'must be an absolute path' })
    .optional(),
  /** The containers-certs.d(5) root to use instead of /etc/containers/certs.d, /etc/docker/certs.d. */
  PODFLEET_REGISTRY_CERTS_DIR: z
    .string()
    .trim()
    .startsWith('/', { message: 'must be an absolute path' })
    .optional(),
  /** Comma-separated `host[:port]`s spoken to over plain http, as the devices' registries.conf. */
  PODFLEET_REGISTRY_INSECURE: z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((host) => host.trim())
        .filter((host) => host !== ''),
    )
    .superRefine((hosts, ctx) => {
      for (const host of hosts) {
        // A host no image reference could name (a scheme, a path, no dot) is a mistake.
        if (parseImageReference(`${host}/image`)?.registry !== host) {
          ctx.addIssue({ code: 'custom', message: `${host} is not a registry host[:port]` });
        }
      }
    })
    .optional(),
});

/** The controller's registry access from its environment; each problem names the variable. */
export function loadRegistryAccess(env: Readonly<Record<string, unknown>>): RegistryAccess {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => typeof value === 'string' && value !== ''),
  );
  const parsed = RegistryEnv.safeParse(present);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error));
  const {
    PODFLEET_REGISTRY_AUTH_FILE: authFile,
    PODFLEET_REGISTRY_INSECURE: insecure,
    PODFLEET_REGISTRY_CERTS_DIR: certsDir,
  } = parsed.data;
  if (certsDir) {
    let directory = false;
    try {
      directory = statSync(certsDir).isDirectory();
    } catch (error) {
      throw new ConfigError([`PODFLEET_REGISTRY_CERTS_DIR: ${certsDir}: ${fileProblem(error)}`]);
    }
    if (!directory) {
      throw new ConfigError([`PODFLEET_REGISTRY_CERTS_DIR: ${certsDir}: not a directory`]);
    }
  }
  if (authFile) {
    try {
      loginsIn(readFileSync(authFile, 'utf8'));
    } catch (error) {
      throw new ConfigError([`PODFLEET_REGISTRY_AUTH_FILE: ${authFile}: ${fileProblem(error)}`]);
    }
  }
  return {
    ...(authFile ? { authFile } : {}),
    ...(insecure && insecure.length > 0 ? { insecure } : {}),
    ...(certsDir ? { certsDirs: [certsDir] } : {}),
  };
}
