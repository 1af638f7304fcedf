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
    expect(gate.admit('pi-1')).toEqual({ record: true, droppedBefore: 7 });
    expect(gate.admit('pi-1')).toEqual({ record: true, droppedBefore: 0 });
  });
});
