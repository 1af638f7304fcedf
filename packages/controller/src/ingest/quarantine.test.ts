import { describe, expect, it } from 'vitest';
import { QuarantineGate } from './quarantine.js';

describe('QuarantineGate', () => {
  it('records a few refusals of a device a minute, counts the rest, and says how many when the next minute starts', () => {
    let now = 0;
    const gate = new QuarantineGate(3, () => now);
    const taken = Array.from({ length: 10 }, () => gate.admit('pi-1').record);
    expect(taken).toEqual([true, true, true, false, false, false, false, false, false, false]);
    // Another device has its own allowance.
    expect(gate.admit('pi-2').record).toBe(true);
    now = 60_000;
    expect(gate.admit('pi-1')).toEqual({ record: true, droppedBefore: 7, mutes: false });
    expect(gate.admit('pi-1')).toEqual({ record: true, droppedBefore: 0, mutes: false });
  });

  it('mutes a device refused muteAfter times in its minute, until the minute ends', () => {
    let now = 0;
    const gate = new QuarantineGate(3, () => now, 5);
    const mutes = Array.from({ length: 5 }, () => gate.admit('pi-1').mutes);
    expect(mutes).toEqual([false, false, false, false, true]);
    expect(gate.muted('pi-1')).toBe(true);
    expect(gate.muted('pi-2')).toBe(false);
    now = 59_999;
    expect(gate.muted('pi-1')).toBe(true);
    now = 60_000;
    expect(gate.muted('pi-1')).toBe(false);
  });
});
