/**
 * The node process: `tsx server/main.ts [flags]`. Config → RegionNode.start(config,
 * roomModules); SIGTERM/SIGINT, or an admin's POST /nodes/:nodeId/drain, drain it and
 * exit. `npm start` runs demo/main.ts, which is this plus the demo rooms, bots and
 * simulated devices.
 *
 * Exit codes: 0 after a clean drain, 1 on a start failure, 2 on bad configuration.
 */
import "./polyfills.ts";
import { pathToFileURL } from "node:url";
import { loadConfig, ConfigError } from "./config.ts";
import { usage } from "./configSettings.ts";
import { RegionNode } from "./RegionNode.ts";
import { roomModules } from "../rooms/index.ts";

/** Something started beside the node (the demo), stopped after the node's drain. */
export interface Companion {
  stop(): Promise<void>;
}

/**
 * Runs a node process from `argv` until SIGTERM or SIGINT. `companion` starts beside
 * the node once it listens (the demo passes its own).
 */
export async function runNodeProcess(argv: string[], companion?: (node: RegionNode) => Promise<Companion | undefined>): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(usage());
    return;
  }

  let config;
  try {
    config = loadConfig({ argv });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`tsunagi: ${error.message}\n\nRun with --help for the settings.`);
      process.exit(2);
    }
    throw error;
  }

  const node = await RegionNode.start(config, roomModules);
  const started = await companion?.(node);

  // Machine-readable line for supervisors and tests that start nodes on port 0.
  if (process.env.TSUNAGI_READY_LINE) {
    process.stdout.write(JSON.stringify({ ready: true, httpUrl: node.httpUrl, gatewayUrl: node.gatewayUrl, port: node.port, nodeId: node.nodeId, regionId: node.regionId }) + "\n");
  }

  // A signal, or an admin's drain over HTTP: the drain, then the companion, then exit.
  let stopping = false;
  const shutdown = (reason: string) => {
    if (stopping) return;
    stopping = true;
    node.stop(reason).then(() => started?.stop()).then(() => process.exit(0), (error) => {
      node.logger.error({ err: error }, "drain failed");
      process.exit(1);
    });
  };
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      node.logger.warn(`second ${signal}: exiting without waiting for the drain`);
      process.exit(1);
    }
    shutdown(signal);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  node.onDrainRequested = shutdown;
}

/** Start-up failures (port taken, Redis down) are configuration problems: the message is enough. */
export function exitOnStartFailure(error: unknown): never {
  const failure = error as Error | undefined;
  console.error(`tsunagi: failed to start: ${failure?.message ?? error}`);
  if (process.env.TSUNAGI_LOG_LEVEL === "debug" || process.env.TSUNAGI_LOG_LEVEL === "trace") console.error(failure?.stack);
  process.exit(1);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  runNodeProcess(process.argv.slice(2)).catch(exitOnStartFailure);
}
