import { describe, expect, it } from 'vitest';
import { parseImageReference, withDigest } from './image.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  it.each([
    ['busybox', { repository: 'busybox' }],
    ['library/busybox:1.36', { repository: 'library/busybox', tag: '1.36' }],
    [
      'registry.example/acme/web:1.4',
      { registry: 'registry.example', repository: 'acme/web', tag: '1.4' },
    ],
    ['localhost/pf/app:v1', { registry: 'localhost', repository: 'pf/app', tag: 'v1' }],
    ['127.0.0.1:5000/pf/app', { registry: '127.0.0.1:5000', repository: 'pf/app' }],
    [`quay.io/a/b:1@${digest}`, { registry: 'quay.io', repository: 'a/b', tag: '1', digest }],
  ])('parses %s', (reference, expected) => {
    expect(parseImageReference(reference)).toEqual(expected);
  });

  it.each(['', 'UPPER/case', 'web:', 'web@sha256:short', 'a b', 'web:tag with space', 'web:-bad'])(
    'rejects %j',
    (reference) => {
      expect(parseImageReference(reference)).toBeUndefined();
    },
  );

  it('pins a tagged reference by digest', () => {
    expect(withDigest('registry.example/acme/web:1.4', digest)).toBe(
      `registry.example/acme/web@${digest}`,
    );
  });
});
