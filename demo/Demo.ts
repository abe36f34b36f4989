/**
 * What `npm start` shows a newcomer: the node's addresses, how to get in, and a live
 * teleoperation room ("teleop-demo") with a simulated excavator and a simulated drone,
 * each attached through its own adapter process, exactly as real edge hardware would be.
 *
 * The demo enrols its devices in this node's device registry and hands each adapter its
 * secret through the environment. The adapters stop with the node (SIGTERM), and exit
 * by themselves if the node process disappears.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { matchMaker } from "@colyseus/core";
import type { RegionNode } from "../server/RegionNode.ts";
import { loadHallLayout } from "../rooms/expo/HallLayout.ts";
import { openHall } from "../rooms/expo/HallAdmin.ts";
import { startExpoBots, type ExpoBots } from "./ExpoBots.ts";
import { prettyLogs } from "../common/logOutput.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The demo's devices: id, driver, device class for enrolment, and whether it has a (simulated) camera. */
export const demoDevices = [
  { deviceId: "excavator-1", driver: "sim-excavator", deviceClass: "excavator", camera: true },
  { deviceId: "drone-1", driver: "sim-drone", deviceClass: "drone", camera: false },
] as const;
export const DEMO_TELEOP_ROOM = "teleop-demo";
/** The demo's expo hall layout and how many bots walk it. */
export const DEMO_HALL_FILE = path.join(repoRoot, "deploy", "halls", "demo-hall.json");
export const DEMO_BOTS = 12;

export interface Demo {
  /** Stops the adapter processes (the node stops the room). */
  stop(): Promise<void>;
}

export async function startDemo(node: RegionNode): Promise<Demo> {
  const adapters: ChildProcess[] = [];
  const logger = node.logger.child({ component: "demo" });

  await matchMaker.createRoom("teleop", { roomId: DEMO_TELEOP_ROOM, devices: demoDevices.map((d) => d.deviceId) });
  // A node without TLS (dev mode, loopback) is reached in the adapters' dev mode; with TLS,
  // through the CA the node trusts its peers with, if one is configured.
  const transportArgs = node.httpUrl.startsWith("https://") ? (node.config.tls.caFile ? ["--ca", node.config.tls.caFile] : []) : ["--dev"];
  for (const device of demoDevices) {
    const { deviceSecret } = await node.devices.enroll(device.deviceId, device.deviceClass);
    const child = spawn(process.execPath, [
      "--import", "tsx", "devices/adapter/main.ts",
      "--device", device.deviceId, "--driver", device.driver, "--node", node.httpUrl, ...transportArgs, "--log-level", "warn", "--log-format", node.config.logFormat,
      // Its camera goes through the node's Janus: only when the node runs one.
      ...(device.camera && node.config.voice.mode !== "off" ? ["--camera", "sim"] : []),
    ], {
      cwd: repoRoot,
      env: { ...process.env, TSUNAGI_DEVICE_SECRET: deviceSecret, TSUNAGI_ADAPTER_PARENT_PID: String(process.pid) },
      stdio: ["ignore", "inherit", "inherit"],
    });
    child.once("exit", (code, signal) => {
      if (!stopping) logger.warn({ deviceId: device.deviceId, code, signal }, `demo adapter ${device.deviceId} exited`);
    });
    adapters.push(child);
  }
  let stopping = false;

  const hall = await openHall(node.context, loadHallLayout(DEMO_HALL_FILE), "deploy/halls/demo-hall.json");
  const bots: ExpoBots = await startExpoBots({
    url: node.httpUrl, hallId: hall.hallId, count: DEMO_BOTS,
    token: (i) => node.tokens.issue({ sub: `demo-bot-${i + 1}`, role: "visitor" }, node.tokens.maxAgeSeconds),
    onError: (error) => logger.debug({ err: error }, "demo bot error"),
  });
  const stopAdapters = () => { for (const child of adapters) if (child.exitCode === null) child.kill("SIGTERM"); };
  process.once("exit", stopAdapters);

  const lines = [
    `Tsunagi region node "${node.nodeId}" (region ${node.regionId}) is up.`,
    `  visitor:  ${node.httpUrl}/expo/${hall.hallId}            (the expo hall in a browser; ?as=host for the host tools)`,
    `  cockpit:  ${node.httpUrl}/teleop/${DEMO_TELEOP_ROOM}?as=operator   (drive the excavator; ?as=supervisor to reset e-stops)`,
    `  console:  ${node.httpUrl}/console?as=admin          (regions, rooms, expo, teleop, admin actions)`,
    `  health:   ${node.httpUrl}/healthz`,
    `  metrics:  ${node.httpUrl}/metrics`,
    `  devices:  ${node.gatewayUrl}  (edge adapters connect here)`,
  ];
  if (node.config.devMode) {
    lines.push(`  token:    curl '${node.httpUrl}/dev/token?role=operator'   (dev mode only; roles: visitor, host, operator, supervisor)`);
  }
  lines.push(`  lobby:    join room "lobby" with @colyseus/sdk at ws://${node.publicAddress}`);
  lines.push(`  teleop:   room "${DEMO_TELEOP_ROOM}" with ${demoDevices.map((d) => `${d.deviceId} (${d.driver})`).join(" and ")}`);
  lines.push(`            drive it: npm run operator -- --node ${node.httpUrl} --room ${DEMO_TELEOP_ROOM} --device excavator-1`);
  lines.push(`  expo:     hall "${hall.hallId}" (deploy/halls/demo-hall.json) with ${DEMO_BOTS} bots walking between its booths`);
  lines.push(`            walk it: ExpoSession.join(client, "${hall.hallId}") from client-sdk; analytics: curl -H "authorization: Bearer $(curl -s '${node.httpUrl}/dev/token?role=host')" '${node.httpUrl}/expo/halls/${hall.hallId}/analytics?format=csv'`);
  // A person at a terminal reads the banner as text; a log collector gets one JSON line.
  if (prettyLogs(node.config.logFormat)) process.stdout.write(`\n${lines.join("\n")}\n\n`);
  else logger.info({ demo: true }, lines.join("\n"));

  return {
    async stop() {
      stopping = true;
      await bots.stop();
      stopAdapters();
      await Promise.all(adapters.map((child) => child.exitCode !== null ? undefined : new Promise((resolve) => {
        const timer = setTimeout(() => { child.kill("SIGKILL"); }, 5000);
        child.once("exit", () => { clearTimeout(timer); resolve(undefined); });
      })));
    },
  };
}
