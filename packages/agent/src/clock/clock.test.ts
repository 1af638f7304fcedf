import { describe, expect, it } from 'vitest';
import { VirtualClock } from './clock.js';

describe('VirtualClock', () => {
  it('fires timers in due order, ties in the order they were set, and skips cancelled ones', async () => {
    const clock = new VirtualClock(0);
    const fired: string[] = [];
    clock.setTimer(20, () => fired.push('b'));
    clock.setTimer(10, () => fired.push('a'));
    clock.setTimer(20, () => fired.push('c'));
    clock.setTimer(15, () => fired.push('never')).cancel();
    await clock.advance(19);
    expect(fired).toEqual(['a']);
    expect(clock.now()).toBe(19);
    await clock.advance(1);
    expect(fired).toEqual(['a', 'b', 'c']);
  });

  it('runs async work that sleeps to completion in virtual time', async () => {
    const clock = new VirtualClock(0);
    const work = async () => {
      await clock.sleep(1_000);
      await Promise.resolve();
      await clock.sleep(60_000);
      return clock.now();
    };
    expect(await clock.run(work())).toBe(61_000);
  });

  it('reports work that waits on nothing the clock will fire', async () => {
    const clock = new VirtualClock(0);
    await expect(clock.run(new Promise(() => {}))).rejects.toThrow('waits on nothing');
  });
});
