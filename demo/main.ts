/**
 * What `npm start` runs: a region node (server/main.ts) and, unless `--demo false`, the
 * demo beside it (Demo.ts): a teleop room with a simulated excavator and drone, an expo
 * hall with bots walking it, and a banner saying how to get in. Voice (`--voice-mode`)
 * is auto here: on when Janus is installed.
 */
import "../server/polyfills.ts";
import { exitOnStartFailure, runNodeProcess } from "../server/main.ts";
import { startDemo } from "./Demo.ts";

// Voice is on when Janus is installed (otherwise the log says how to install it), unless set otherwise.
const args = process.argv.slice(2);
const voiceSet = args.some((arg) => arg === "--voice-mode" || arg.startsWith("--voice-mode=")) || Boolean(process.env.TSUNAGI_VOICE_MODE);
runNodeProcess(voiceSet ? args : ["--voice-mode", "auto", ...args], async (node) => (node.config.demo ? startDemo(node) : undefined)).catch(exitOnStartFailure);
