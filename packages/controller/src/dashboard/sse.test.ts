import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dashboardAssetsDir } from './plugin.js';

interface StreamEvent {
  type: string;
  data: string;
}
const { parseEvents, readEvents } = (await import(
  pathToFileURL(join(dashboardAssetsDir, 'js', 'sse.js')).href
)) as {
  parseEvents: (text: string) => { events: StreamEvent[]; rest: string };
  readEvents: (
    body: ReadableStream<Uint8Array>,
    onEvent: (e: StreamEvent) => void,
  ) => Promise<void>;
};

describe('server-sent events read from a fetch body', () => {
  it('parses events as the rollout stream writes them, keeping an unfinished one for later', () => {
    const text =
      'event: status\ndata: {"state":"running"}\n\n: keep-alive\n\nevent: happening\ndata: {"line":"batch 1 started"}\n\nevent: status\ndata: {"sta';
    expect(parseEvents(text)).toEqual({
      events: [
        { type: 'status', data: '{"state":"running"}' },
        { type: 'happening', data: '{"line":"batch 1 started"}' },
      ],
      rest: 'event: status\ndata: {"sta',
    });
  });

  it('follows the format: CRLF lines, joined data lines, no space after the colon, default type', () => {
    expect(parseEvents('data:a\r\ndata: b\r\n\r\nevent:x\ndata\n\nid: 1\n\n')).toEqual({
      events: [
        { type: 'message', data: 'a\nb' },
        { type: 'x', data: '' },
      ],
      rest: '',
    });
    // A CR that ends a chunk may be half of a CRLF: kept until the next chunk says.
    expect(parseEvents('data: a\r\n\r')).toEqual({ events: [], rest: 'data: a\n\r' });
  });

  it('reads events split anywhere across chunks, multi-byte characters included', async () => {
    const whole = new TextEncoder().encode(
      'event: happening\ndata: {"line":"berlin-04 failed: nicht bereit → zurück"}\n\nevent: status\ndata: {}\n\n',
    );
    const chunks = [
      whole.subarray(0, 7),
      whole.subarray(7, 60),
      whole.subarray(60, 61),
      whole.subarray(61),
    ];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk);
        controller.close();
      },
    });
    const seen: StreamEvent[] = [];
    await readEvents(body, (event) => seen.push(event));
    expect(seen).toEqual([
      { type: 'happening', data: '{"line":"berlin-04 failed: nicht bereit → zurück"}' },
      { type: 'status', data: '{}' },
    ]);
  });
});
