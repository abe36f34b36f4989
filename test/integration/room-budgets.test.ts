/**
 * The budgets of the rooms that relay what clients send to many (real node, real Redis):
 * a `session` room's chat, everyone's together, and each lobby client's `filter`s (each
 * answered with the whole list). Beyond them: RATE_LIMITED, told at most once a second to
 * each client and logged as often, every refusal counted; the room goes on.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { Client, type Room } from "@colyseus/sdk";
import { ErrorCode } from "../../proto/index.ts";
import { flushRedisDb, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(5);
const CHAT_RATE = 5;
const CHAT_BURST = 10;
const FILTER_RATE = 1;
const FILTER_BURST = 3;
let node: NodeProcess;
const rooms: Room[] = [];

async function client(role: "visitor" | "host" = "visitor"): Promise<Client> {
  const c = new Client(node.httpUrl);
  c.auth.token = await testToken(node.clusterName, role);
  return c;
}
function errorsOf(room: Room): number[] {
  const codes: number[] = [];
  room.onError((code) => codes.push(code));
  return codes;
}
async function metric(labels: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("tsunagi_errors_total{") && l.includes(labels));
  return line ? Number(line.split(" ").pop()) : 0;
}
const count = (codes: number[], code: number) => codes.filter((c) => c === code).length;

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  node = await startNode({
    redisUrl, clusterName: `budgets-${randomUUID().slice(0, 8)}`,
    extraArgs: ["--session-chat-per-second", String(CHAT_RATE), "--session-chat-burst", String(CHAT_BURST),
      "--lobby-filter-per-second", String(FILTER_RATE), "--lobby-filter-burst", String(FILTER_BURST)],
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(rooms.splice(0).map((room) => room.leave().catch(() => {})));
  await node?.stop();
  await flushRedisDb(redisUrl);
});

describe("a session room's chat budget", () => {
  it("relays at most its budget from everyone together, refuses the rest RATE_LIMITED (told once a second), and goes on", async () => {
    const roomId = `budget-${randomUUID().slice(0, 6)}`;
    // Naming a session room is for staff (server/auth/roomAccess.ts); a visitor joins it by its full id.
    const sender = await (await client("host")).joinOrCreate("session", { roomId });
    const listener = await (await client()).joinById(sender.roomId);
    rooms.push(sender, listener);
    const heard: string[] = [];
    listener.onMessage("chat", (message: { text: string }) => heard.push(message.text));
    const senderErrors = errorsOf(sender);

    const flood = 60;
    const started = Date.now();
    for (let i = 0; i < flood; i++) sender.send("chat", { text: `m${i}` });
    // Messages are handled in order: once the bad one after the flood is refused, the flood was handled.
    sender.send("chat", { text: "" });
    await waitFor(() => senderErrors.includes(ErrorCode.WRONG_TYPE), 10_000, "the refusal of the message after the flood");
    const elapsedS = (Date.now() - started) / 1000;
    // The budget refills: a later chat is relayed, and arrives after every chat relayed before it.
    await new Promise((resolve) => setTimeout(resolve, 1000 / CHAT_RATE + 50));
    sender.send("chat", { text: "after the flood" });
    await waitFor(() => heard.includes("after the flood"), 5000, "a chat after the flood");
    const relayed = heard.length - 1;

    expect(relayed).toBeGreaterThanOrEqual(CHAT_BURST);
    expect(relayed).toBeLessThanOrEqual(CHAT_BURST + Math.ceil(CHAT_RATE * (elapsedS + 1)));
    const told = count(senderErrors, ErrorCode.RATE_LIMITED);
    expect(told).toBeGreaterThanOrEqual(1);
    expect(told).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    await expect.poll(() => metric('code="RATE_LIMITED",source="session"'), { timeout: 5000 }).toBe(flood - relayed);
    const logLines = node.output().split("\n").filter((line) => line.includes("chat messages/s (burst")).length;
    expect(logLines).toBe(told);
  });
});

describe("the lobby's filter", () => {
  it("takes each client's filters up to its allowance, refuses the rest RATE_LIMITED (told once a second), and keeps the last filter taken", async () => {
    const lobby = await (await client()).joinOrCreate("lobby");
    rooms.push(lobby);
    const lists: unknown[] = [];
    lobby.onMessage("rooms", (list: unknown) => lists.push(list));
    lobby.onMessage("+", () => {});
    lobby.onMessage("-", () => {});
    const errors = errorsOf(lobby);
    await waitFor(() => lists.length === 1, 10_000, "the list on join");

    const flood = 40;
    const started = Date.now();
    for (let i = 0; i < flood; i++) lobby.send("filter", { name: i % 2 ? "session" : "expo" });
    lobby.send("no-such-message", {});
    await waitFor(() => errors.includes(ErrorCode.UNKNOWN_MESSAGE), 10_000, "the refusal of the message after the flood");
    const elapsedS = (Date.now() - started) / 1000;

    const answered = lists.length - 1;
    expect(answered).toBeGreaterThanOrEqual(FILTER_BURST);
    expect(answered).toBeLessThanOrEqual(FILTER_BURST + Math.ceil(FILTER_RATE * (elapsedS + 1)));
    const told = count(errors, ErrorCode.RATE_LIMITED);
    expect(told).toBeGreaterThanOrEqual(1);
    expect(told).toBeLessThanOrEqual(Math.ceil(elapsedS) + 1);
    await expect.poll(() => metric('code="RATE_LIMITED",source="lobby"'), { timeout: 5000 }).toBe(flood - answered);
  });
});
