# retention: purges expired execution data on a schedule.
# Built from the repo's own build (npm ci, npm run build); the runtime stage has production
# dependencies only and runs as the non-root `node` user. From the repository root:
#   docker build -f docker/retention.Dockerfile -t flow-runs/retention .
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: every dependency, then the TypeScript build (dist/) ---
# --ignore-scripts: no install script is needed to build or run (package.json allowScripts).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY apps ./apps
COPY libs ./libs
COPY scripts ./scripts
RUN npm run build

# --- deps: production dependencies only ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime: the app's build, the shared libraries' build, production node_modules ---
# Files stay owned by root (read-only to the app); only the process runs as `node`.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    RETENTION_HOST=0.0.0.0 \
    RETENTION_PORT=3003
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/libs ./dist/libs
COPY --from=build /src/dist/apps/retention ./dist/apps/retention
COPY docker/healthcheck.js ./healthcheck.js
USER node
EXPOSE 3003
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["node", "healthcheck.js", "RETENTION_PORT", "3003"]
# SIGTERM drains in-flight work (SHUTDOWN_DRAIN_TIMEOUT_MS) before the process exits.
STOPSIGNAL SIGTERM
CMD ["node", "dist/apps/retention/src/main.js"]
