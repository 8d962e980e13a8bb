# flow-worker: drives runs step by step.
# Built from the repo's own build (npm ci, npm run build); the runtime stage has production
# dependencies only and runs as the non-root `node` user. From the repository root:
#   docker build -f docker/flow-worker.Dockerfile -t flow-runs/flow-worker .
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
    FLOW_WORKER_HOST=0.0.0.0 \
    FLOW_WORKER_PORT=3004
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/libs ./dist/libs
COPY --from=build /src/dist/apps/flow-worker ./dist/apps/flow-worker
COPY docker/healthcheck.js ./healthcheck.js
USER node
EXPOSE 3004
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["node", "healthcheck.js", "FLOW_WORKER_PORT", "3004"]
# SIGTERM drains in-flight work (SHUTDOWN_DRAIN_TIMEOUT_MS) before the process exits.
STOPSIGNAL SIGTERM
CMD ["node", "dist/apps/flow-worker/src/main.js"]
