# syntax=docker/dockerfile:1
#
# The edge adapter (devices/adapter/main.ts): one device, kept connected to the nearest
# region. Arguments after the image name are the adapter's (devices/adapter/args.ts):
#
#   docker build -f deploy/docker/adapter.Dockerfile -t tsunagi/adapter:0.1.0 .
#   docker run -v /etc/tsunagi/ex-1:/run/secrets/tsunagi:ro \
#     -e TSUNAGI_DEVICE_SECRET_FILE=/run/secrets/tsunagi/device.secret \
#     tsunagi/adapter:0.1.0 --device ex-1 --driver sim-excavator \
#     --node https://jp-tokyo.tsunagi.example --ca /run/secrets/tsunagi/ca.pem
#
# The status endpoint (GET /status, /healthz; POST /estop) listens on 127.0.0.1:2580
# inside the container: `docker exec` reaches it, nothing outside does. `--camera sim`
# needs ffmpeg, which this image leaves out.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: `npm ci` runs the postinstall (protobuf code and the web apps), which needs
# every source and the dev dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The project installs with npm 11 (its allowScripts policy); the image ships npm 10.
RUN npm install --global --no-audit --no-fund npm@11
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
# The adapter runs on `tsx`, a regular dependency: the dev dependencies can go.
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: the adapter imports proto/, common/ and devices/ only (DESIGN.md, "Layout").
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json /app/tsconfig.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/proto ./proto
COPY --from=build /app/common ./common
COPY --from=build /app/devices ./devices

ENV NODE_ENV=production

# The image's `node` user (uid 1000); numeric, so runAsNonRoot can verify it.
USER 1000:1000

# SIGTERM: the adapter stops its machine, closes its channel and exits 0.
STOPSIGNAL SIGTERM

# 200 while a gateway has welcomed the device; 503 with its state otherwise (connecting,
# refused, conflict), which is what a supervisor of the edge host wants to see.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:2580/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"

# node itself is PID 1 (no npm or tsx wrapper), so SIGTERM reaches the adapter. The status
# port is fixed here, where the HEALTHCHECK above looks for it.
ENTRYPOINT ["node", "--import", "tsx", "devices/adapter/main.ts", "--status-port", "2580"]
CMD ["--help"]
