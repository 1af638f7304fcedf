import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock/clock.js';
import { SimHost } from './sim-host.js';

const host = (failing: boolean, badImage?: string) =>
  new SimHost({ clock: new VirtualClock(), name: 'sim-0000' }, failing, badImage);

describe('a simulated device’s images', () => {
  it('are good on a device that is not failing', async () => {
    const h = host(false);
    const id = await h.pullImage('r.example/web:2');
    expect(h.images.behaviourOf(id)).toEqual({});
  });

  it('fail on a failing device only after its first successful apply', async () => {
    const h = host(true);
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:1'))).toEqual({});
    h.failNewImages = true;
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:2'))).toMatchObject({
      neverReady: true,
    });
  });

  it('fail on every device when they match --bad-image, from the first', async () => {
    const h = host(false, 'broken');
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:2-broken'))).toMatchObject({
      neverReady: true,
    });
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:2'))).toEqual({});
  });
});
