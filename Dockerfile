# The podfleet controller image (docker-compose.yml builds it). The CLI is the entry point:
# `serve` by default, `migrate` or any other podfleet command otherwise.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.json prisma.config.ts ./
COPY packages/shared/package.json packages/shared/
COPY packages/agent/package.json packages/agent/
COPY packages/controller/package.json packages/controller/
RUN npm ci --no-audit --no-fund
COPY prisma prisma
COPY packages packages
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PODFLEET_DATA=/var/lib/podfleet
COPY --from=build /app /app
RUN mkdir -p /var/lib/podfleet && chown node:node /var/lib/podfleet
USER node
EXPOSE 8080
ENTRYPOINT ["node", "packages/controller/bin/podfleet.js"]
CMD ["serve"]
