# syntax=docker/dockerfile:1
#
# The region node: `node --import tsx server/main.ts`, configured by TSUNAGI_* environment
# variables or flags (server/configSettings.ts; README, "Configuration").
#
#   docker build -f deploy/docker/node.Dockerfile -t tsunagi/node:0.1.0 .
#
# Voice: the node's Janus runs as a sidecar container (deploy/k8s, docs/deploy.md) that the
# node reaches through voice.janusUrl. For a single host without a sidecar, build with
# `--build-arg WITH_JANUS=true` to add Debian's janus, and run with TSUNAGI_VOICE_MODE=on:
# the node then starts its own Janus (docs/voice.md).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: every source and the dev dependencies, since `npm ci` runs the postinstall
# (npm run proto && npm run build:web: protobufjs-cli and vite are dev dependencies).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The project installs with npm 11 (its allowScripts policy); the image ships npm 10.
RUN npm install --global --no-audit --no-fund npm@11
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
# The node runs on `tsx`, a regular dependency: the dev dependencies can go.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime
FROM ${NODE_IMAGE} AS runtime
ARG WITH_JANUS=false
RUN if [ "$WITH_JANUS" = "true" ]; then \
      apt-get update && apt-get install -y --no-install-recommends janus && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /app
# What the node reads at run time, owned by root and read-only to the node's user. The CLI
# tools (cli/: npm run audit, devices, keys) come along, for `kubectl exec`.
COPY --from=build /app/package.json /app/package-lock.json /app/tsconfig.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/proto ./proto
COPY --from=build /app/common ./common
COPY --from=build /app/server ./server
COPY --from=build /app/rooms ./rooms
COPY --from=build /app/devices ./devices
COPY --from=build /app/client-sdk ./client-sdk
COPY --from=build /app/cli ./cli
COPY --from=build /app/web/dist ./web/dist
COPY --from=build /app/deploy/regions.json /app/deploy/node.sample.json ./deploy/
COPY --from=build /app/deploy/halls ./deploy/halls
# The audit journal, anchors and archive (audit.dir): mount a volume here.
RUN install -d -o node -g node /var/lib/tsunagi/audit

ENV NODE_ENV=production \
    TSUNAGI_HOST=0.0.0.0 \
    TSUNAGI_PORT=2567 \
    TSUNAGI_GATEWAY_PORT=2568 \
    TSUNAGI_LOG_FORMAT=json \
    TSUNAGI_AUDIT_DIR=/var/lib/tsunagi/audit

# The image's `node` user (uid 1000); numeric, so runAsNonRoot can verify it.
USER 1000:1000

# Client port (https/wss, /healthz, /ping, matchmaking) and device gateway (wss).
# A node given --gateway-device-ca-file also listens on gateway.certPort (2571).
EXPOSE 2567 2568

# The node drains on SIGTERM (its rooms move to other nodes) and exits within
# drainTimeoutMs: give `docker stop` / the pod a grace period above it.
STOPSIGNAL SIGTERM

# /healthz answers 503 while draining. Over https when the node has its TLS files; the
# probe is a loopback call, so it does not check the certificate (issued for the public name).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD NODE_TLS_REJECT_UNAUTHORIZED=0 node --no-warnings -e "fetch((process.env.TSUNAGI_TLS_CERT_FILE ? 'https' : 'http') + '://127.0.0.1:' + (process.env.TSUNAGI_PORT || 2567) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

# node itself is PID 1 (no npm or tsx wrapper in between), so SIGTERM reaches the drain.
ENTRYPOINT ["node", "--import", "tsx", "server/main.ts"]
