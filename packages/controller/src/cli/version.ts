import { createRequire } from 'node:module';

// src/cli/ and dist/cli/ are both two levels below the package's package.json.
const manifest = createRequire(import.meta.url)('../../package.json') as { version: string };

/** This podfleet's version, as `podfleet --version` prints it. */
export const PODFLEET_VERSION: string = manifest.version;
