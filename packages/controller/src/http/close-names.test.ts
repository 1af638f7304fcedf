import { describe, expect, it } from 'vitest';
import { closeNames, editDistance } from './close-names.js';

describe('closeNames', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('wbe', 'web')).toBe(1);
    expect(editDistance('sim-0O31', 'sim-0031')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('names typos closest first, and nothing for another name', () => {
    const ids = ['sim-0031', 'sim-0032', 'sim-0131', 'gw-1', 'pi-1'];
    expect(closeNames('sim-0O31', ids)).toEqual(['sim-0031', 'sim-0131', 'sim-0032']);
    expect(closeNames('pi-gone', ids)).toEqual([]);
    expect(closeNames('nosuch', ['web'])).toEqual([]);
    expect(closeNames('web', ['web'])).toEqual([]);
  });
});
