/**
 * The edge adapter process: runs one simulated device and keeps it connected to the
 * nearest Tsunagi region (AdapterRuntime). Log lines are pino JSON on stdout, plus one
 * human line when the device comes online.
 *
 * Exit codes: 0 after SIGTERM/SIGINT, or when the parent named by
 * TSUNAGI_ADAPTER_PARENT_PID is gone (the device stopped and finalised, or, for a drone
 * still in the air, its motion zeroed); 1 on a fatal error; 2 on bad arguments.
 *
 * @example
 *   TSUNAGI_DEVICE_SECRET_FILE=/etc/tsunagi/ex-1.secret npm run adapter -- --device ex-1 --driver sim-excavator \
 *     --node http://127.0.0.1:2567 --node http://127.0.0.1:2568
 *   # {"level":30,...,"msg":"adapter ex-1 online via jp-tokyo/tokyo-1"}
 *   # adapter ex-1 online via jp-tokyo/tokyo-1
 */
import { readFileSync } from "node:fs";
import { logDestination } from "../../common/logOutput.ts";
import { pino } from "pino";
import { createDriver, type Driver } from "../drivers/index.ts";
import { AdapterRuntime } from "./AdapterRuntime.ts";
import { StatusServer } from "./StatusServer.ts";
import { ArgsError, parseAdapterArgs, usage, type AdapterArgs } from "./args.ts";
import { watchParent } from "./parentWatch.ts";
import { CameraFeed } from "./CameraFeed.ts";

let args: AdapterArgs;
try {
  args = parseAdapterArgs(process.argv.slice(2), process.env);
} catch (error) {
  if (!(error instanceof ArgsError)) throw error;
  process.stderr.write(`adapter: ${error.message}\n\n${usage}\n`);
  process.exit(2);
}
if (args.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}

const adapterVersion = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
const logSettings = { level: args.logLevel, base: { component: "adapter" }, timestamp: pino.stdTimeFunctions.isoTime };
const logStream = logDestination(args.logFormat);
const logger = logStream ? pino(logSettings, logStream) : pino(logSettings);

for (const warning of args.warnings) logger.warn(warning);

let driver: Driver;
try {
  // every driver gets the device id and a logger beside its own settings
  driver = createDriver(args.driver, { ...args.driverOptions, deviceId: args.deviceId, logger: logger.child({ driver: args.driver }) } as never);
  await driver.open?.();
} catch (error) {
  // a config the driver refuses, a port in use: say which and stop before anything connects
  logger.fatal({ err: error }, `driver ${args.driver}: ${(error as Error).message}`);
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  process.stderr.write(`adapter: driver ${args.driver}: ${(error as Error).message}\n`);
  process.exit(2);
}
driver.init();
driver.start();
const runtime = new AdapterRuntime({
  deviceId: args.deviceId,
  driver,
  credential: args.credential,
  nodes: args.nodes,
  ca: args.ca,
  devMode: args.devMode,
  telemetryHz: args.telemetryHz,
  adapterVersion,
  logger,
});
runtime.on("online", ({ regionId, nodeId }) => {
  process.stdout.write(`adapter ${args.deviceId} online via ${regionId}/${nodeId}\n`);
});

// The machine's camera (--camera sim: a synthetic test pattern), sent where its room says.
let camera: CameraFeed | undefined;
let cameraTarget = "";
runtime.on("cameraTarget", (target) => {
  if (args.camera === "off") return;
  const where = target.port ? `${target.host}:${target.port}` : "";
  if (where === cameraTarget) return;
  cameraTarget = where;
  void camera?.stop();
  camera = undefined;
  if (!where) return void logger.info("camera: the room stopped it");
  try {
    camera = CameraFeed.start({ rtpHost: target.host!, rtpPort: target.port!, payloadType: target.payloadType || undefined, srtpKey: target.srtpKey || undefined, logger });
    logger.info({ host: target.host, port: target.port }, `camera: sending the test pattern to ${where}`);
  } catch (error) {
    logger.error({ err: error }, `camera: ${(error as Error).message}`);
  }
});

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) {
    logger.warn({ signal }, `${signal} again while stopping: zeroing motion and exiting now`);
    driver.hal.zeroMotion();
    process.exit(1);
  }
  shuttingDown = true;
  logger.info({ signal }, `${signal}: stopping adapter ${args.deviceId}`);
  await runtime.stop();
  await camera?.stop();
  await status?.close();
  try {
    const report = driver.finalize();
    for (const failure of report.failed) logger.warn({ componentId: failure.componentId }, `finalize: ${failure.error.message}`);
  } catch (error) {
    // a drone in the air refuses to shut down: the best left to do is hold it still
    driver.hal.zeroMotion();
    logger.warn({ err: error }, `driver refused to finalize (${(error as Error).message}); motion zeroed`);
  }
  logger.info(`adapter ${args.deviceId} exited`);
  logger.flush(() => process.exit(0));
}

// A child adapter (the demo's) stops its device and exits with its parent, even one killed with SIGKILL.
if (args.parentPid !== undefined) watchParent(args.parentPid, () => { if (!shuttingDown) void shutdown(`parent process ${args.parentPid} gone`); });
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("uncaughtException", (error) => {
  driver.hal.zeroMotion();
  logger.fatal({ err: error }, `uncaught exception; motion zeroed: ${error.message}`);
  logger.flush(() => process.exit(1));
});

if (args.devMode) logger.warn("dev mode: plain http:// and ws:// allowed; never run a real machine like this");
logger.info({ driver: args.driver, nodes: args.nodes, adapterVersion, mode: "secret" in args.credential ? "signed-challenge" : "token" in args.credential ? "token" : "certificate", devMode: args.devMode },
  `adapter ${args.deviceId} starting (${args.driver})`);
runtime.start();

let status: StatusServer | undefined;
if (args.statusPort !== undefined) {
  try {
    let lastRefusalLogAt = 0;
    status = await StatusServer.start(runtime, {
      host: "127.0.0.1", port: args.statusPort,
      // a web page hammering the endpoint must not flood the log: one line a second at most
      onRefused: (reason) => {
        if (Date.now() - lastRefusalLogAt < 1000) return;
        lastRefusalLogAt = Date.now();
        logger.warn(`local endpoint refused a request: ${reason}`);
      },
    });
    logger.info({ url: status.url }, `adapter ${args.deviceId} status on ${status.url}`);
    process.stdout.write(`adapter ${args.deviceId} status on ${status.url}\n`);
  } catch (error) {
    // the device is safe without it; say so and keep running
    logger.error({ err: error }, (error as Error).message);
  }
}
