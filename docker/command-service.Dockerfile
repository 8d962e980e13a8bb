# command-service: the write side; also the operator CLI (dist/apps/cli) and the migrate job.
# Built from the repo's own build (npm ci, npm run build); the runtime stage has production
# dependencies only and runs as the non-root `node` user. From the repository root:
#   docker build -f docker/command-service.Dockerfile -t flow-runs/command-service .
# The operator CLI ships in this image too (same dependencies, same database):
#   docker compose -f docker/compose.yml run --rm command-service node dist/apps/cli/src/main.js --help
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
    COMMAND_SERVICE_HOST=0.0.0.0 \
    COMMAND_SERVICE_PORT=3001
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/libs ./dist/libs
COPY --from=build /src/dist/apps/command-service ./dist/apps/command-service
COPY --from=build /src/dist/apps/cli ./dist/apps/cli
COPY docker/healthcheck.js ./healthcheck.js
USER node
EXPOSE 3001
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["node", "healthcheck.js", "COMMAND_SERVICE_PORT", "3001"]
# SIGTERM drains in-flight work (SHUTDOWN_DRAIN_TIMEOUT_MS) before the process exits.
STOPSIGNAL SIGTERM
CMD ["node", "dist/apps/command-service/src/main.js"]
