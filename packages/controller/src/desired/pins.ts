import { parseImageReference } from '@podfleet/shared';
import { z } from 'zod';

const PIN_RULE = 'a pin must be an image by digest (repository@sha256:…)';

/** Why an image cannot be a pin, or undefined when it can: pinned means one exact image. */
export function pinProblem(image: string): string | undefined {
  return parseImageReference(image)?.digest === undefined ? PIN_RULE : undefined;
}

/** The image of a pin, as the API and CLI take it. */
export const PinnedImage = z.string().refine((image) => pinProblem(image) === undefined, {
  message: PIN_RULE,
});
