import { defineConfig } from 'prisma/config';

// For the Prisma CLI: `prisma generate` (run by the controller's build) and, where the native
// schema engine is installed, `prisma migrate deploy|status` against DATABASE_URL.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // Optional: generate needs no database, so a missing DATABASE_URL must not fail the build.
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
