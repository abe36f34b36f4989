/**
 * A node on an external Janus (`voice.janusUrl`), here one the test runs (JanusProcess,
 * which starts it again when it dies, as a platform's supervisor would): the node checks
 * it, grants voice on it, sees it die and come back and makes its rooms again there; a
 * Janus whose admin key the node does not hold is refused at start, naming the problem.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import type { tsunagi } from "../../proto/index.ts";
import { JanusProcess } from "../../server/voice/JanusProcess.ts";
import { createLogger } from "../../server/observability/logging.ts";
import { metricValue, runScript, startNode, testSecret, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";

const logger = createLogger({ level: "warn", regionId: "test", nodeId: "external-janus" });
let janus: JanusProcess;
let node: NodeProcess;
let folder: string;
let restarts = 0;

/** The node's flags for the external Janus, its secrets in a file of `secrets`. */
function externalArgs(secrets: object, name: string): string[] {
  const file = path.join(folder, name);
  writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
  return ["--voice-mode", "on", "--voice-janus-url", janus.endpoint.apiUrl, "--voice-janus-admin-url", janus.endpoint.adminUrl, "--voice-janus-secrets-file", file];
}

beforeAll(async () => {
  folder = mkdtempSync(path.join(tmpdir(), "tsunagi-external-janus-"));
  janus = await JanusProcess.start({ rtpPortRange: "46500-46599", serverName: "external", logger, onRestart: () => { restarts++; } });
  node = await startNode({ env: { TSUNAGI_AUTH_SECRET: testSecret }, extraArgs: externalArgs(janus.endpoint.secrets, "secrets.json") });
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await janus?.stop();
  rmSync(folder, { recursive: true, force: true });
});

async function grant(roomId: string): Promise<tsunagi.v1.VoiceGrant> {
  const client = new TsunagiClient({ url: node.httpUrl, token: await testToken(node.clusterName, "operator") });
  const session = await client.joinOrCreate("session", { roomId });
  try {
    return (await session.request({ voiceJoin: { speak: true } })).voiceGrant as tsunagi.v1.VoiceGrant;
  } finally {
    await session.leave().catch(() => {});
  }
}

describe("voice on an external Janus", () => {
  it("grants voice there, and makes its rooms there again after it died and came back", { timeout: 60_000 }, async () => {
    expect(node.output()).toMatch(/voice on the external Janus at ws:\/\/127\.0\.0\.1:\d+/);
    expect((await grant("external-a")).url).toBe(janus.endpoint.apiUrl);

    process.kill(janus.pid!, "SIGKILL");
    await waitFor(() => restarts > 0, 20_000, "the external Janus started again by its supervisor");
    await waitFor(async () => (await metricValue(node, "tsunagi_voice_janus_restarts_total")) >= 1 && (await metricValue(node, "tsunagi_voice_up")) === 1, 20_000, "the node back on it");
    // Its rooms went with it: the next grant makes the room again.
    expect((await grant("external-b")).url).toBe(janus.endpoint.apiUrl);
    expect(node.output()).toMatch(/the external Janus at .* answers again/);
  });

  it("refuses to start on a Janus it holds the wrong admin key of, and says so", { timeout: 60_000 }, async () => {
    const { code, stdout, stderr } = await runScript("server/main.ts", ["--port", "0", "--gateway-port", "0", "--demo", "false", ...externalArgs({ ...janus.endpoint.secrets, adminKey: "not-the-admin-key" }, "wrong.json")],
      { env: { TSUNAGI_AUTH_SECRET: testSecret } });
    expect(code).toBe(1);
    expect(stdout + stderr).toMatch(/not safe to use[\s\S]*VideoRoom refused a room with our admin key/);
  });
});
