// Names the CLI shares with the server, in a module that loads nothing: importing them from db/ or
// auth/ would load Prisma into every `podfleet` command (cli/startup.test.ts checks what loads).

/** Where serve, migrate and keys keep their data when neither PODFLEET_DATA nor --data is given. */
export const DEFAULT_DATA_DIR = '.podfleet';

/** Where serve keeps the bootstrap token under PODFLEET_DATA, and where the CLI looks for it. */
export const ADMIN_TOKEN_FILE = 'admin-token';

/** The manifest-signing key under PODFLEET_DATA (keys/signing-key.ts), mode 0600. */
export const SIGNING_KEY_FILE = 'manifest-signing-key.pem';
/** Every rotation's endorsement (the new key signed by the old), oldest first. */
export const KEY_CHAIN_FILE = 'manifest-signing-key.chain.json';
