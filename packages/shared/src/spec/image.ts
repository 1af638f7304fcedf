// The image reference grammar of containers/image (docker/distribution reference): an optional
// registry host[:port], a lower-case path, then a tag and/or a sha256 digest.
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_PART}(?:\\.${DOMAIN_PART})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?`;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH = `${COMPONENT}(?:/${COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = 'sha256:[a-f0-9]{64}';
const REFERENCE = new RegExp(`^(?:(${DOMAIN})/)?(${PATH})(?::(${TAG}))?(?:@(${DIGEST}))?$`);

export interface ImageReference {
  /** Registry host, when the first component looks like one (has `.` or `:`, or is localhost). */
  registry?: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Parses an image reference; undefined when it is not one. */
export function parseImageReference(reference: string): ImageReference | undefined {
  if (reference.length > 512) return undefined;
  const match = REFERENCE.exec(reference);
  if (!match) return undefined;
  const [, , , tag, digest] = match;
  let [, domain, path] = match;
  // docker/distribution: a first component without '.', ':' or 'localhost' is part of the path.
  if (domain && !/[.:]/.test(domain) && domain !== 'localhost' && !domain.startsWith('[')) {
    if (!new RegExp(`^${COMPONENT}$`).test(domain)) return undefined;
    path = `${domain}/${path}`;
    domain = undefined;
  }
  const parsed: ImageReference = { repository: path! };
  if (domain) parsed.registry = domain;
  if (tag) parsed.tag = tag;
  if (digest) parsed.digest = digest;
  return parsed;
}

/** The same image pinned by digest: `repo@sha256:…` (a tag, if any, is dropped). */
export function withDigest(reference: string, digest: string): string {
  const parsed = parseImageReference(reference);
  if (!parsed) throw new Error(`not an image reference: ${reference}`);
  const name = parsed.registry ? `${parsed.registry}/${parsed.repository}` : parsed.repository;
  return `${name}@${digest}`;
}
