import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyCounts } from '../rollouts/status.js';
import { runCli } from './main.js';
import { runCliCaptured } from './testing.js';

/** What a hostile agent can put in any string it reports. */
const HOSTILE = 'x\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\nforged line';
const SHOWN = 'x\\x1b[2J\\x1b]0;owned\\x07\\u009b31m\\u202eevil\\nforged line';

const rolloutId = '7d1c0c52-1111-4222-8333-944455556666';
const failed = {
  id: 'pi-1',
  batch: 0,
  state: 'failed',
  from: 'r/web:1',
  to: 'r/web:2',
  online: true,
  reason: HOSTILE,
};
const status = {
  id: rolloutId,
  service: 'web',
  targetImage: 'r/web:2',
  state: 'failed',
  reason: HOSTILE,
  counts: { ...emptyCounts(), failed: 1, total: 1 },
  batches: [],
  waiting: [],
  awaitingApproval: false,
  failures: [failed],
};

/**
 * The answers a controller gives when its devices sent HOSTILE: a device command's result, a
 * rollout's devices, and its live stream. The CLI's output is what is under test here.
 */
const answers: Record<string, (send: (body: string, type?: string) => void) => void> = {
  'POST /v1/devices/pi-1/commands': (send) =>
    send(
      JSON.stringify({
        device: 'pi-1',
        result: {
          type: 'logs',
          service: 'web',
          truncated: false,
          lines: ['GET /\t200\t3ms', HOSTILE],
        },
      }),
    ),
  [`GET /v1/rollouts/${rolloutId}/devices`]: (send) =>
    send(JSON.stringify({ items: [failed], nextCursor: null })),
  [`GET /v1/rollouts/${rolloutId}/stream`]: (send) =>
    send(
      `event: happening\ndata: ${JSON.stringify({ line: `pi-1 failed: ${HOSTILE}` })}\n\n` +
        `event: status\ndata: ${JSON.stringify(status)}\n\n`,
      'text/event-stream',
    ),
};

describe('device text as the CLI prints it', () => {
  let server: Server;
  let connection: string[];
  beforeAll(async () => {
    server = createServer((request, response) => {
      const answer = answers[`${request.method} ${request.url?.split('?')[0]}`];
      if (!answer) return void response.writeHead(404).end('{"message":"not here"}');
      answer((body, type = 'application/json') =>
        response.writeHead(200, { 'content-type': type }).end(body),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    connection = ['--url', `http://127.0.0.1:${port}`, '--token', 't'];
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('logs: one journal line per line, tabs kept, every other control shown', async () => {
    const run = await runCliCaptured(['logs', 'pi-1', 'web', ...connection]);
    expect(run).toEqual({ code: 0, stdout: `GET /\t200\t3ms\n${SHOWN}\n`, stderr: '' });
  });

  it('rollout status --devices: the reason stays in its cell', async () => {
    const run = await runCliCaptured(['rollout', 'status', rolloutId, '--devices', ...connection]);
    expect(run.stdout.split('\n')).toEqual([
      'DEVICE  BATCH  STATE   COMPLIANCE  ONLINE  IMAGE              REASON',
      `pi-1    0      failed  -           yes     r/web:1 → r/web:2  ${SHOWN}`,
      '',
    ]);
  });

  it('rollout watch: happenings, the view and the failure line, each shown on one line', async () => {
    const run = await runCliCaptured(['rollout', 'watch', rolloutId, ...connection]);
    expect(run.code).toBe(1);
    expect(run.stdout.split('\n')).toContain(`pi-1 failed: ${SHOWN}`);
    expect(run.stdout.split('\n')).toContain(`state failed — ${SHOWN}`);
    expect(run.stdout.split('\n')).toContain(`  pi-1: ${SHOWN}`);
    expect(run.stderr).toBe(`podfleet: rollout ${rolloutId} failed: ${SHOWN}\n`);
  });

  it('rollout watch on a terminal: its own clear-screen sequence, and no other', async () => {
    let stdout = '';
    const terminal = { isTTY: true, write: (text: string) => ((stdout += text), true) };
    const code = await runCli(['rollout', 'watch', rolloutId, ...connection], {
      stdout: terminal,
      stderr: { write: () => true },
      stdin: Readable.from([]),
    });
    expect(code).toBe(1);
    expect(stdout.startsWith('\x1b[H\x1b[2J')).toBe(true);
    expect(stdout.slice(7).replaceAll('\n', '')).not.toMatch(/[\p{Cc}\p{Bidi_Control}]/u);
    expect(stdout).toContain(`  pi-1: ${SHOWN}`);
  });
});
