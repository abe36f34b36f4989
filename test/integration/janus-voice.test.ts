/**
 * JanusVoiceBackend against the real Janus (JanusProcess), with janode as the client: a
 * grant admits its holder to its own room only, and only until it expires; no token, a
 * forged one, or another room's is refused; the backend makes a room on first use and
 * destroys it at release; kick sends a participant out and ends its grant; after a
 * Janus restart it makes its rooms again. Signalling only (no media): joining as a
 * publisher needs no SDP. One Janus for the file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JanusProcess } from "../../server/voice/JanusProcess.ts";
import { JanusVoiceBackend } from "../../server/voice/JanusVoiceBackend.ts";
import type { VoiceGrant } from "../../server/voice/VoiceBackend.ts";
import { createLogger } from "../../server/observability/logging.ts";
import { waitFor } from "../fixtures/processes.ts";
import { JanusClients } from "../fixtures/janus.ts";

const GRANT_TTL_MS = 1500;
/** Janus' core refusing a request without a token it holds, and VideoRoom refusing a token not on the room's list. */
const NO_TOKEN = /^refused: 403 Unauthorized request \(wrong or missing secret\/token\)/;
const NOT_ALLOWED = /^refused: 433 Unauthorized \(not in the allowed list\)/;
const logger = createLogger({ level: "warn", regionId: "test", nodeId: "voice-test" });
let janus: JanusProcess;
let voice: JanusVoiceBackend;
let restarted = 0;
const clients = new JanusClients();

beforeAll(async () => {
  janus = await JanusProcess.start({ rtpPortRange: "42100-42199", serverName: "voice-test", logger, onRestart: () => { restarted++; } });
  voice = await JanusVoiceBackend.connect(janus.endpoint, { logger, grantTtlMs: GRANT_TTL_MS });
}, 30_000);
afterAll(async () => {
  await clients.closeAll();
  await voice?.close();
  await janus?.stop();
});

/** A client's attempt to join `room` as a publisher with `token` (core and room): "joined", or Janus' refusal. */
function join(grant: Pick<VoiceGrant, "url" | "feedId">, room: string, token: string | undefined): Promise<string> {
  return clients.joinPublisher(grant.url, token, room, grant.feedId);
}

describe("JanusVoiceBackend", () => {
  it("admits a grant's holder to its own room, and no one without a valid token of that room", { timeout: 30_000 }, async () => {
    const aiko = await voice.grant("expo__voice-a", { sessionId: "aiko", display: "Aiko", speak: true });
    const ben = await voice.grant("expo__voice-b", { sessionId: "ben", display: "Ben", speak: true });
    expect(aiko).toMatchObject({ url: janus.endpoint.apiUrl, room: "expo__voice-a", speak: true });
    expect(aiko.token).not.toBe(ben.token);
    expect(voice.health()).toEqual({ up: true, rooms: 2, participants: 2 });

    expect(await join(aiko, "expo__voice-a", undefined)).toMatch(NO_TOKEN);
    expect(await join(aiko, "expo__voice-a", "forged-token")).toMatch(NO_TOKEN);
    // Ben's token, in Aiko's room: Janus lets him attach, the room does not let him in.
    expect(await join({ ...aiko, feedId: "ben-intruder" }, "expo__voice-a", ben.token)).toMatch(NOT_ALLOWED);
    expect(await join(aiko, "expo__voice-a", aiko.token)).toBe("joined");
    expect(await join(ben, "expo__voice-b", ben.token)).toBe("joined");
  });

  it("a grant admits no one once expired", { timeout: 30_000 }, async () => {
    const grant = await voice.grant("expo__voice-a", { sessionId: "late", display: "Late", speak: false });
    await new Promise((resolve) => setTimeout(resolve, GRANT_TTL_MS + 500));
    expect(await join(grant, "expo__voice-a", grant.token)).toMatch(NOT_ALLOWED);
  });

  it("kick sends a participant out and ends its grant; release destroys the room", { timeout: 30_000 }, async () => {
    const grant = await voice.grant("expo__voice-c", { sessionId: "kicked", display: "K", speak: true });
    expect(await join(grant, "expo__voice-c", grant.token)).toBe("joined");
    await voice.kick("expo__voice-c", "kicked");
    // Its token no longer opens anything: Janus dropped it.
    expect(await join({ ...grant, feedId: "kicked-again" }, "expo__voice-c", grant.token)).toMatch(NO_TOKEN);
    await voice.release("expo__voice-c");
    expect(voice.health().rooms).toBe(2);
    // A later grant makes the room again.
    const back = await voice.grant("expo__voice-c", { sessionId: "back", display: "B", speak: true });
    expect(await join(back, "expo__voice-c", back.token)).toBe("joined");
  });

  it("after Janus restarts, makes its rooms again at the next grant", { timeout: 30_000 }, async () => {
    process.kill(janus.pid!, "SIGKILL");
    await waitFor(() => restarted > 0, 20_000, "Janus started again");
    await voice.restarted();
    expect(voice.health()).toEqual({ up: true, rooms: 0, participants: 0 });
    const grant = await voice.grant("expo__voice-a", { sessionId: "again", display: "A", speak: true });
    expect(await join(grant, "expo__voice-a", grant.token)).toBe("joined");
  });
});
