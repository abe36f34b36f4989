/**
 * What `npm start` runs: a region node (server/main.ts) and, unless `--demo false`, the
 * demo beside it (Demo.ts): a teleop room with a simulated excavator and drone, an expo
 * hall with bots walking it, and a banner saying how to get in.
 */
import "../server/polyfills.ts";
import { exitOnStartFailure, runNodeProcess } from "../server/main.ts";
import { startDemo } from "./Demo.ts";

runNodeProcess(process.argv.slice(2), async (node) => (node.config.demo ? startDemo(node) : undefined)).catch(exitOnStartFailure);
