/** Query parameters that carry a secret (libpq's `password`, `sslpassword`, a broker's token). */
const SECRET_PARAM = /pass|secret|token|key/i;
const HIDDEN = '***';

/**
 * A URL fit to print or log: its password, and any query parameter that names a secret, become
 * `***`; the user, host, port and path stay, so that it still says where the controller connects.
 * A URL without secrets is returned as it was given.
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not a URL the WHATWG parser reads: whatever sits between `//` and `@` goes.
    return text.replace(/\/\/[^/?#]*@/, `//${HIDDEN}@`);
  }
  let changed = false;
  if (url.password) {
    url.password = HIDDEN;
    changed = true;
  }
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) {
      url.searchParams.set(name, HIDDEN);
      changed = true;
    }
  }
  return changed ? url.href : text;
}
