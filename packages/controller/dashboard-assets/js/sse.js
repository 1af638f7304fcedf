// @ts-check
/* global TextDecoder */
/**
 * Server-sent events read from a fetch body: EventSource cannot send an Authorization header, so
 * the dashboard streams with fetch and parses the format itself (WHATWG HTML, "Server-sent events").
 */

/** @typedef {{ type: string, data: string }} StreamEvent */

/**
 * Splits received text into complete events and the unfinished rest, to be prefixed to the next
 * chunk. Comments (`: keep-alive`) and blocks without data are dropped, as EventSource drops them.
 * @param {string} text
 * @returns {{ events: StreamEvent[], rest: string }}
 */
export function parseEvents(text) {
  // CRLF, CR and LF all end a line; a CR at the very end may be the first half of a CRLF.
  const held = text.endsWith('\r') ? '\r' : '';
  const lines = (held ? text.slice(0, -1) : text).replace(/\r\n?/g, '\n');
  const blocks = lines.split('\n\n');
  const rest = (blocks.pop() ?? '') + held;
  /** @type {StreamEvent[]} */
  const events = [];
  for (const block of blocks) {
    const event = parseBlock(block);
    if (event) events.push(event);
  }
  return { events, rest };
}

/**
 * @param {string} block
 * @returns {StreamEvent | undefined}
 */
function parseBlock(block) {
  let type = 'message';
  /** @type {string[]} */
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  return data.length > 0 ? { type, data: data.join('\n') } : undefined;
}

/**
 * Calls `onEvent` for every event of the body until the server ends the stream.
 * @param {ReadableStream<Uint8Array>} body
 * @param {(event: StreamEvent) => void} onEvent
 */
export async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    // stream: a character split between two chunks is decoded once its last byte arrives.
    const parsed = parseEvents(buffer + decoder.decode(value, { stream: true }));
    buffer = parsed.rest;
    parsed.events.forEach(onEvent);
  }
}
