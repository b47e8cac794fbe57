# syntax=docker/dockerfile:1

# ---- build: install dependencies (better-sqlite3 compiles from source) ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci runs the install scripts package.json allows (better-sqlite3, esbuild);
# then drop the dev dependencies. tsx is a runtime dependency, so it stays.
RUN npm ci \
 && npm prune --omit=dev \
 && npm cache clean --force

# ---- runtime: no compilers, non-root ----
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY package.json tsconfig.json entrypoint.sh ./
COPY src ./src
COPY config ./config
COPY strategies ./strategies
# Writable state lives in volumes owned by the unprivileged `node` user (uid 1000).
RUN mkdir -p data status logs \
 && chown node:node data status logs \
 && chmod 0755 entrypoint.sh
USER node
VOLUME ["/app/data", "/app/status", "/app/logs"]
# `trader status` exits 1 when the heartbeat is missing, stale or unhealthy.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD node --import tsx src/cli/main.ts status > /dev/null || exit 1
# entrypoint.sh migrates, then execs node so node receives SIGTERM directly.
ENTRYPOINT ["/app/entrypoint.sh"]
