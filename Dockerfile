# syntax=docker/dockerfile:1
# The eventbus worker image: the supervisor (`node dist/supervisor`) and the handlers compiled from
# handlers/. No emulator (fauxqs is a devDependency) and no dev tools; runs as uid 1000, not root.
#   docker build -t eventbus:0.1.0 .
#   docker run --rm -p 9464:9464 -e AWS_REGION=us-east-1 eventbus:0.1.0 --config /etc/eventbus/config.json
# deploy/README.md "Container image" has the rest (a service of your own, pinning by digest).
# test/unit/dockerfile.test.ts checks the rules above.

ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Compile TypeScript (src, metrics, handlers -> dist) with every dependency installed.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY src ./src
COPY metrics ./metrics
COPY handlers ./handlers
RUN npm run build

# 2. Runtime dependencies only. better-sqlite3's native addon: npm ci fetches its prebuilt binary;
# on a platform without one, add `RUN apt-get update && apt-get install -y python3 make g++` first.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 3. The image: runtime dependencies, the compiled code, package.json (version, self-imports).
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The example handlers' own runtime dependency: handlers/email.ts validates with zod, which eventbus
# itself does not depend on (a devDependency here). A service's image gets its handlers' packages
# from its own "dependencies" instead (deploy/README.md "Container image").
COPY --from=build /app/node_modules/zod ./node_modules/zod
COPY package.json ./
COPY bin ./bin
# The web console's own page, script and styles (its libraries are in node_modules).
COPY assets ./assets
# Numeric, so that Kubernetes' runAsNonRoot can verify it (the node image's "node" user is 1000).
USER 1000:1000
EXPOSE 9464
# SIGTERM reaches node itself (exec form, no shell or npm in between): the supervisor drains.
ENTRYPOINT ["node", "dist/supervisor"]
