/**
 * Rooms grant voice over the wire (voice.proto), on real nodes: one running its own Janus,
 * one without voice. A session room's participant asks for a grant and the grant opens
 * that room's voice in Janus and no other's; leaving the room ends it (the token opens
 * nothing any more) and the last one out closes the voice room; without voice the
 * answer is VOICE_UNAVAILABLE (retryable), counted; a VoiceReady naming another feed is
 * refused WRONG_TYPE and the room goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import { TsunagiError } from "../../client-sdk/errors.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { ErrorCode, type tsunagi } from "../../proto/index.ts";
import { metricValue, startNode, testSecret, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { JanusClients } from "../fixtures/janus.ts";
import { machineAddress } from "../../server/voice/settings.ts";

let voiceNode: NodeProcess;
let quietNode: NodeProcess;
const sessions: RoomSession[] = [];
const janusClients = new JanusClients();

beforeAll(async () => {
  const env = { TSUNAGI_AUTH_SECRET: testSecret };
  [voiceNode, quietNode] = await Promise.all([
    startNode({ env, extraArgs: ["--voice-mode", "on", "--voice-media-interfaces", machineAddress(), "--voice-rtp-port-range", "44000-44199"] }),
    startNode({ env }),
  ]);
}, 60_000);
afterAll(async () => {
  await janusClients.closeAll();
  await Promise.allSettled(sessions.map((session) => session.leave()));
  await Promise.allSettled([voiceNode?.stop(), quietNode?.stop()]);
});

async function join(node: NodeProcess, roomId: string, role: "operator" | "visitor" = "operator"): Promise<RoomSession> {
  const client = new TsunagiClient({ url: node.httpUrl, token: await testToken(node.clusterName, role) });
  const session = await client.joinOrCreate("session", { roomId });
  sessions.push(session);
  return session;
}

async function grantOf(session: RoomSession): Promise<tsunagi.v1.VoiceGrant> {
  return (await session.request({ voiceJoin: { speak: true } })).voiceGrant as tsunagi.v1.VoiceGrant;
}

/** Joining `room` in Janus as a publisher with `grant`'s token: "joined", or Janus' refusal. */
function enter(grant: tsunagi.v1.VoiceGrant, room = grant.room): Promise<string> {
  return janusClients.joinPublisher(grant.url, grant.token, room, `${grant.feedId}${room === grant.room ? "" : "-x"}`);
}

async function voiceRooms(node: NodeProcess): Promise<number> {
  return (await (await fetch(`${node.httpUrl}/healthz`)).json()).voice.rooms;
}

describe("voice grants from rooms", () => {
  it("a grant opens its room's voice in Janus and no other's; leaving ends it, and the last one out closes the voice room", { timeout: 60_000 }, async () => {
    const aiko = await join(voiceNode, "voice-a");
    const ben = await join(voiceNode, "voice-b");
    const aikoGrant = await grantOf(aiko);
    const benGrant = await grantOf(ben);
    expect(aikoGrant).toMatchObject({ room: "session__voice-a", speak: true, codec: "opus/48000/2" });
    expect(aikoGrant.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(aikoGrant.expiresAtMs).toBeGreaterThan(Date.now());
    expect(await enter(aikoGrant)).toBe("joined");
    expect(await enter(benGrant, aikoGrant.room)).toMatch(/^refused: .*not in the allowed list/);
    expect(await voiceRooms(voiceNode)).toBe(2);

    await aiko.leave();
    // Its token opens nothing any more, and its voice room (it was alone) is gone.
    await waitFor(async () => (await voiceRooms(voiceNode)) === 1, 10_000, "Aiko's voice room closed with her room");
    expect(await enter(aikoGrant)).toMatch(/^refused: .*(Unauthorized|No such room)/);
    expect(await metricValue(voiceNode, 'tsunagi_voice_grants_total{outcome="granted"}')).toBe(2);
  });

  it("without voice on the node: VOICE_UNAVAILABLE, retryable, counted", { timeout: 30_000 }, async () => {
    const chie = await join(quietNode, "voice-quiet");
    const refused = await grantOf(chie).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TsunagiError);
    expect(refused).toMatchObject({ code: ErrorCode.VOICE_UNAVAILABLE, retryable: true });
    expect(await metricValue(quietNode, 'tsunagi_voice_grants_total{outcome="unavailable"}')).toBe(1);
  });

  it("a VoiceReady naming another feed is refused WRONG_TYPE, and the room goes on", { timeout: 30_000 }, async () => {
    const dan = await join(voiceNode, "voice-c");
    await grantOf(dan);
    const errors: TsunagiError[] = [];
    dan.on("error", (error) => errors.push(error));
    dan.sendEnvelope({ voiceReady: { feedId: "someone-else" } });
    await waitFor(() => errors.length > 0, 10_000, "the refusal");
    expect(errors[0]).toMatchObject({ code: ErrorCode.WRONG_TYPE });
    expect((await dan.request({ ping: { clientTimeMs: 1 } })).pong).toBeTruthy();
  });
});
