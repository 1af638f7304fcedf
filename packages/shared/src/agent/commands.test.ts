import { describe, expect, it } from 'vitest';
import { CommandResponse, parseAgentCommand } from './commands.js';

describe('parseAgentCommand', () => {
  it('reads the three requests, filling defaults, from bytes or parsed JSON', () => {
    expect(parseAgentCommand(Buffer.from('{"id":"a","type":"auto-update"}'))).toEqual({
      ok: true,
      command: { id: 'a', type: 'auto-update', dryRun: false, retry: false },
    });
    expect(parseAgentCommand({ id: 'b', type: 'logs', service: 'web' })).toEqual({
      ok: true,
      command: { id: 'b', type: 'logs', service: 'web', lines: 100 },
    });
    expect(parseAgentCommand('{"id":"c","type":"restart","service":"web"}')).toMatchObject({
      ok: true,
      command: { type: 'restart', service: 'web' },
    });
  });

  it('refuses with the field and keeps the id when there is one to answer to', () => {
    expect(parseAgentCommand({ id: 'd', type: 'logs', service: 'web', lines: 5000 })).toEqual({
      ok: false,
      id: 'd',
      error: 'invalid command: lines: Too big: expected number to be <=1000',
    });
    expect(parseAgentCommand({ id: 'e', type: 'restart', service: '../etc/passwd' })).toEqual({
      ok: false,
      id: 'e',
      error: 'invalid command: service: not a service name',
    });
    expect(
      parseAgentCommand({ id: 'f', type: 'restart', service: 'web', force: true }),
    ).toMatchObject({ ok: false, id: 'f', error: expect.stringContaining('force') });
    expect(parseAgentCommand({ type: 'reboot' })).toMatchObject({ ok: false, id: undefined });
    expect(parseAgentCommand('{')).toEqual({
      ok: false,
      id: undefined,
      error: 'command is not JSON',
    });
    expect(parseAgentCommand('null')).toMatchObject({ ok: false, id: undefined });
  });

  it('describes the answers: a result or an error, with the request id', () => {
    expect(
      CommandResponse.safeParse({
        id: 'a',
        ok: true,
        result: { type: 'logs', service: 'web', lines: ['x'], truncated: false },
      }).success,
    ).toBe(true);
    expect(CommandResponse.safeParse({ id: 'a', ok: false, error: 'no' }).success).toBe(true);
    expect(CommandResponse.safeParse({ id: 'a', ok: true, error: 'no' }).success).toBe(false);
  });
});
