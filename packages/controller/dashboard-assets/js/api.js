// @ts-check
import { readEvents } from './sse.js';

/** The controller answered 401: the token is unknown, revoked or malformed. */
export class TokenRefused extends Error {}

/** The controller answered with another error status; `detail` is its message alone. */
export class ApiError extends Error {
  /**
   * @param {string} path
   * @param {number} status
   * @param {string} detail
   */
  constructor(path, status, detail) {
    super(`${path}: ${status} ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

/** Reads the controller's /v1 API with a bearer token. */
export class ApiClient {
  /**
   * @param {string} token
   * @param {typeof fetch} [fetchImpl]
   */
  constructor(token, fetchImpl = globalThis.fetch.bind(globalThis)) {
    this.token = token;
    this.fetch = fetchImpl;
  }

  /**
   * GET a JSON answer; callers say what shape they expect of it.
   * @param {string} path
   * @returns {Promise<unknown>}
   */
  async get(path) {
    const response = await this.request(path, { accept: 'application/json' });
    return response.json();
  }

  /**
   * POST with no body (an operator action such as approve) and read the JSON answer.
   * @param {string} path
   * @returns {Promise<unknown>}
   */
  async post(path) {
    const response = await this.request(path, { method: 'POST', accept: 'application/json' });
    return response.json();
  }

  /**
   * Follows a server-sent event stream until the server ends it or `signal` aborts.
   * @param {string} path
   * @param {(event: import('./sse.js').StreamEvent) => void} onEvent
   * @param {AbortSignal} signal
   */
  async stream(path, onEvent, signal) {
    const response = await this.request(path, { accept: 'text/event-stream', signal });
    if (!response.body) throw new Error(`${path}: no body to stream`);
    await readEvents(response.body, onEvent);
  }

  /**
   * @param {string} path
   * @param {{ method?: 'GET' | 'POST', accept: string, signal?: AbortSignal }} options
   */
  async request(path, { method = 'GET', accept, signal }) {
    const response = await this.fetch(path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, accept },
      cache: 'no-store',
      signal,
    });
    if (response.ok) return response;
    // Errors leave the API as { error, message }: show the message, which names the problem.
    const message = await response
      .json()
      .then((body) => String(body.message ?? response.statusText))
      .catch(() => response.statusText);
    if (response.status === 401) throw new TokenRefused(message);
    throw new ApiError(path, response.status, message);
  }
}
