import { createRequire } from 'node:module';

// src/runtime/ and dist/runtime/ are both two levels below the package's package.json.
const manifest = createRequire(import.meta.url)('../../package.json') as { version: string };

/** This agent's version, as reported in every state report. */
export const AGENT_VERSION: string = manifest.version;
