/**
 * Bench child: a region node as `npm start` runs it. Its argument is the list of
 * server/main.ts flags, parsed by the same loadConfig, and the node is started by the
 * same RegionNode.start; the environment's TSUNAGI_* settings are ignored, so a shell's
 * Redis URL cannot turn the bench into another setup. Unlike server/main.ts it speaks
 * the bench's IPC channel, so it exits when the bench does, even one killed outright.
 * Ready data: NodeReady. Calls: startWindow / stopWindow (PauseFigures), memory
 * (MemoryFigures after a full GC); the parent reads its CPU time from /proc.
 */
import "../../server/polyfills.ts";
import { loadConfig } from "../../server/config.ts";
import { RegionNode } from "../../server/RegionNode.ts";
import { roomModules } from "../../rooms/index.ts";
import type { NodeReady } from "./control-protocol.ts";
import { memoryMethods, pauseWindowMethods } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

const argv = JSON.parse(process.argv[2] ?? "null") as unknown;
if (!Array.isArray(argv) || !argv.every((flag) => typeof flag === "string")) {
  throw new Error(`expected a JSON list of server/main.ts flags as argument, got ${process.argv[2]}`);
}

const node = await RegionNode.start(loadConfig({ argv, env: {} }), roomModules);
const ready: NodeReady = { httpUrl: node.httpUrl, gatewayUrl: node.gatewayUrl };
serveParent({ ...pauseWindowMethods(), ...memoryMethods() }, ready);
