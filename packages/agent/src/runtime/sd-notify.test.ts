import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock/clock.js';
import { SdNotify, type NotifySend } from './sd-notify.js';

/** A service manager that records what it was told, each send taking `delayMs` of the clock. */
function manager(clock: VirtualClock, delayMs = 0) {
  const sockets: string[] = [];
  const messages: string[][] = [];
  const state = { started: 0 };
  const send = (socket: string): NotifySend => {
    sockets.push(socket);
    return async (fields) => {
      state.started++;
      if (delayMs > 0) await clock.sleep(delayMs);
      messages.push([...fields]);
    };
  };
  return { sockets, messages, send, state };
}

describe('SdNotify', () => {
  it('is a no-op without NOTIFY_SOCKET, and no watchdog runs', async () => {
    const clock = new VirtualClock();
    const systemd = manager(clock);
    const env = { WATCHDOG_USEC: '2000000' };
    const notify = SdNotify.fromEnvironment(env, { clock, send: systemd.send });
    expect(notify.enabled).toBe(false);
    expect(notify.keepAliveMs).toBeUndefined();
    await notify.ready('online');
    await notify.status('x');
    await notify.stopping();
    await clock.advance(10_000);
    expect(systemd.messages).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it('takes the notify variables out of the environment the agent passes to its commands', () => {
    const env: NodeJS.ProcessEnv = {
      NOTIFY_SOCKET: '/run/systemd/notify',
      WATCHDOG_USEC: '30000000',
      WATCHDOG_PID: '42',
      PATH: '/usr/bin',
    };
    const systemd = manager(new VirtualClock());
    const notify = SdNotify.fromEnvironment(env, { send: systemd.send }, 42);
    expect(env).toEqual({ PATH: '/usr/bin' });
    expect(systemd.sockets).toEqual(['/run/systemd/notify']);
    expect(notify.keepAliveMs).toBe(15_000);
    void notify.close();
  });

  it('sends READY=1 with its status, STATUS= lines and STOPPING=1, in the order asked', async () => {
    const clock = new VirtualClock();
    const systemd = manager(clock, 50);
    const notify = SdNotify.fromEnvironment(
      { NOTIFY_SOCKET: '@notify' },
      { clock, send: systemd.send },
    );
    void notify.status('starting');
    void notify.ready('online; generation 1');
    const stopping = notify.stopping('stopping\nnow');
    await clock.run(stopping);
    expect(systemd.messages).toEqual([
      ['STATUS=starting'],
      ['READY=1', 'STATUS=online; generation 1'],
      // A newline would begin another field of the message.
      ['STOPPING=1', 'STATUS=stopping now'],
    ]);
  });

  it('keeps the watchdog alive at half of WATCHDOG_USEC until closed', async () => {
    const clock = new VirtualClock();
    const systemd = manager(clock);
    const env = { NOTIFY_SOCKET: '/run/n', WATCHDOG_USEC: '4000000', WATCHDOG_PID: '7' };
    const notify = SdNotify.fromEnvironment(env, { clock, send: systemd.send }, 7);
    await clock.advance(1_999);
    expect(systemd.messages).toEqual([]);
    await clock.advance(1);
    await clock.advance(4_000);
    expect(systemd.messages).toEqual([['WATCHDOG=1'], ['WATCHDOG=1'], ['WATCHDOG=1']]);
    await notify.close();
    await clock.advance(10_000);
    expect(systemd.messages).toHaveLength(3);
    expect(clock.pending()).toBe(0);
  });

  it('never builds a backlog of keep-alives behind a slow send', async () => {
    const clock = new VirtualClock();
    const systemd = manager(clock, 5_000);
    const env = { NOTIFY_SOCKET: '/run/n', WATCHDOG_USEC: '2000000' };
    const notify = SdNotify.fromEnvironment(env, { clock, send: systemd.send });
    await clock.advance(10_000);
    // One was due every second, each send takes 5 s: the second starts when the first is done.
    expect(systemd.state.started).toBe(2);
    await clock.run(notify.close());
    expect(systemd.messages).toEqual([['WATCHDOG=1'], ['WATCHDOG=1']]);
  });

  it('ignores a watchdog meant for another process (WATCHDOG_PID)', () => {
    const env = { NOTIFY_SOCKET: '/run/n', WATCHDOG_USEC: '4000000', WATCHDOG_PID: '1' };
    const notify = SdNotify.fromEnvironment(env, { send: manager(new VirtualClock()).send }, 7);
    expect(notify.keepAliveMs).toBeUndefined();
  });

  it('tells a failed send and goes on with the next', async () => {
    const errors: string[] = [];
    const sent: string[][] = [];
    const send = (): NotifySend => async (fields) => {
      if (fields[0] === 'READY=1') throw new Error('systemd-notify: No such file or directory');
      sent.push([...fields]);
    };
    const notify = SdNotify.fromEnvironment(
      { NOTIFY_SOCKET: '/run/n' },
      { send, onError: (message) => errors.push(message) },
    );
    await notify.ready('online');
    await notify.status('still here');
    expect(errors).toEqual(['sd_notify READY=1: systemd-notify: No such file or directory']);
    expect(sent).toEqual([['STATUS=still here']]);
  });
});
