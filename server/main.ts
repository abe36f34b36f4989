/**
 * Entry point: `npm start -- [flags]`. Config → RegionNode.start(); SIGTERM/SIGINT drain.
 * Exit codes: 0 after a clean drain, 1 on a start failure, 2 on bad configuration.
 */
import "./polyfills.ts";
import { loadConfig, usage, ConfigError } from "./config.ts";
import { RegionNode } from "./RegionNode.ts";
import { startDemo } from "./demo.ts";

async function main() {
  const argv = process.argv.slice(2);
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

  const node = await RegionNode.start(config);
  const demo = config.demo ? await startDemo(node) : undefined;

  // Machine-readable line for supervisors and tests that start nodes on port 0.
  if (process.env.TSUNAGI_READY_LINE) {
    process.stdout.write(JSON.stringify({ ready: true, httpUrl: node.httpUrl, gatewayUrl: node.gatewayUrl, port: node.port, nodeId: node.nodeId, regionId: node.regionId }) + "\n");
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      node.logger.warn(`second ${signal}: exiting without waiting for the drain`);
      process.exit(1);
    }
    node.stop(signal).then(() => demo?.stop()).then(() => process.exit(0), (error) => {
      node.logger.error({ err: error }, "drain failed");
      process.exit(1);
    });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

main().catch((error) => {
  // Start-up failures (port taken, Redis down) are configuration problems: the message is enough.
  console.error(`tsunagi: failed to start: ${error?.message ?? error}`);
  if (process.env.TSUNAGI_LOG_LEVEL === "debug" || process.env.TSUNAGI_LOG_LEVEL === "trace") console.error(error?.stack);
  process.exit(1);
});
