/**
 * An expo hall end to end on a real region node (real Redis): opening halls from layout
 * files, who sees whom, area and booth notifications, host tools, chat and moderation,
 * bad input, and the analytics export of a scripted walk. Visitors are SDK ExpoSessions
 * over real WebSockets.
 */
import "../../server/polyfills.ts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import { TsunagiError } from "../../client-sdk/errors.ts";
import { ErrorCode, tsunagi } from "../../proto/index.ts";
import { flushRedisDb, repoRoot, runScript, startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { testToken } from "../fixtures/tokens.ts";
import { ExpoLog, joinExpo, leaveAll, openHall, refusedWith, smallHall, waitForNeighbours } from "../fixtures/expo.ts";
import { spawn } from "node:child_process";
import { prng } from "../fixtures/random.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(10);
const clusterName = `expo-${randomUUID().slice(0, 8)}`;
const HALL = `hall-${randomUUID().slice(0, 6)}`;
let node: NodeProcess;
let dir: string;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  dir = mkdtempSync(path.join(tmpdir(), "tsunagi-expo-"));
  const config = path.join(dir, "node.json");
  writeFileSync(config, JSON.stringify({ expo: { blockedWords: ["heck"], chatBurst: 3, chatPerSecond: 1 } }));
  node = await startNode({ redisUrl, clusterName, extraArgs: ["--config", config, "--limits-max-matchmake-per-second", "1000"] });
  const opened = await openHall(node, smallHall(HALL));
  expect(opened.status, JSON.stringify(opened.body)).toBe(201);
  expect(opened.body).toMatchObject({ hallId: HALL, zones: [{ zoneId: "", roomId: HALL }] });
}, 60_000);

afterEach(async () => { await leaveAll(); });

afterAll(async () => {
  await leaveAll();
  await node?.stop();
  await flushRedisDb(redisUrl);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("opening a hall", () => {
  it("refuses a malformed layout with LAYOUT_INVALID naming every problem, and the node keeps serving", async () => {
    const bad = { ...smallHall("bad-hall"), width: -5, booths: [{ id: "x y", name: "", exhibitor: "E", area: { x: 0, y: 0, w: 1, h: 1 } }], extra: 1 };
    const { status, body } = await openHall(node, bad);
    expect(status).toBe(400);
    expect(body.code).toBe(ErrorCode.LAYOUT_INVALID);
    expect(body.issues.join("\n")).toMatch(/width/);
    expect(body.issues.join("\n")).toMatch(/booths\[0\]\.id/);
    expect(body.issues.join("\n")).toMatch(/booths\[0\]\.name/);
    expect(body.issues.join("\n")).toMatch(/extra/);
    const notJson = await openHall(node, "{ not json");
    expect(notJson.status).toBe(400);
    expect(notJson.body.code).toBe(ErrorCode.LAYOUT_INVALID);
    // Valid as a layout, but too big for the node's heatmap cells (5 m): said up front, not as an internal error.
    const huge = await openHall(node, { ...smallHall("huge-hall"), width: 6000, height: 6000 });
    expect(huge.status).toBe(400);
    expect(huge.body.code).toBe(ErrorCode.LAYOUT_INVALID);
    expect(huge.body.issues.join("\n")).toMatch(/heatmap/);
    // the open hall is unaffected
    const visitor = await joinExpo(node, HALL);
    expect(visitor.hall.hallId).toBe(HALL);
  });

  it("lets only hosts open halls, refuses a second opening, and refuses clients creating expo rooms themselves", async () => {
    const asVisitor = await openHall(node, smallHall("visitor-hall"), await testToken(clusterName, "visitor"));
    expect(asVisitor.status).toBe(403);
    expect(asVisitor.body.code).toBe(ErrorCode.FORBIDDEN);
    const again = await openHall(node, smallHall(HALL));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe(ErrorCode.ROOM_CONFLICT);
    const client = new TsunagiClient({ url: node.httpUrl, token: await testToken(clusterName, "host") });
    await refusedWith(client.create("expo", { roomId: "sneaky", hall: smallHall("sneaky") }), ErrorCode.FORBIDDEN);
  });

  it("npm run expo checks a layout file locally, opens it on a node, and exports its analytics", async () => {
    const bad = path.join(dir, "bad-hall.json");
    writeFileSync(bad, JSON.stringify({ ...smallHall("cli-bad"), booths: [{ id: "acme", name: "A", exhibitor: "E", area: { x: 95, y: 0, w: 10, h: 10 } }] }));
    const refused = await runScript("cli/expo.ts", ["open", bad, "--node", node.httpUrl, "--token", await testToken(clusterName, "host")]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/LAYOUT_INVALID/);
    expect(refused.stderr).toMatch(/booths\[0\]\.area: extends past the hall's east edge/);
    const good = path.join(dir, "cli-hall.json");
    const hallId = `cli-${randomUUID().slice(0, 6)}`;
    writeFileSync(good, JSON.stringify(smallHall(hallId)));
    const opened = await runScript("cli/expo.ts", ["open", good, "--node", node.httpUrl, "--token", await testToken(clusterName, "host")]);
    expect(opened.code, opened.stderr).toBe(0);
    expect(JSON.parse(opened.stdout)).toMatchObject({ hallId });
    const csv = await runScript("cli/expo.ts", ["analytics", hallId, "--node", node.httpUrl, "--token", await testToken(clusterName, "host"), "--format", "csv"]);
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.stdout.split("\n")[0]).toBe("booth_id,visits,unique_visitors,dwell_total_s,dwell_mean_s,current_visitors");
    const forbidden = await runScript("cli/expo.ts", ["analytics", hallId, "--node", node.httpUrl, "--token", await testToken(clusterName, "visitor")]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toMatch(/403.*FORBIDDEN/);
    const closed = await runScript("cli/expo.ts", ["close", hallId, "--node", node.httpUrl, "--token", await testToken(clusterName, "host")]);
    expect(closed.code, closed.stderr).toBe(0);
    expect(JSON.parse(closed.stdout)).toMatchObject({ hallId, closed: [hallId], visitors: 0 });
  }, 30_000);

  it("a hall of 2,000 booths opens and its whole layout reaches a joining visitor", async () => {
    const hallId = `big-${randomUUID().slice(0, 6)}`;
    const booths = Array.from({ length: 2000 }, (_, i) => ({
      id: `booth-${i}`, name: `Booth number ${i}`, exhibitor: `Exhibitor company ${i}`,
      area: { x: 2 + (i % 50) * 8, y: 2 + Math.floor(i / 50) * 8, w: 5, h: 5 },
    }));
    const { status, body } = await openHall(node, { hallId, name: "Big hall", width: 402, height: 322, booths });
    expect(status, JSON.stringify(body).slice(0, 300)).toBe(201);
    const visitor = await joinExpo(node, hallId);
    expect(visitor.hall.booths).toHaveLength(2000);
    expect(visitor.hall.booths[1999]).toMatchObject({ boothId: "booth-1999", exhibitor: "Exhibitor company 1999" });
  });

  it("a node given a malformed --expo-hall-file exits 1 naming the file and the problem", async () => {
    const file = path.join(dir, "broken-hall.json");
    writeFileSync(file, '{ "hallId": "broken", "name": "Broken", "width": 10,\n  "height": 10, "booths": [ }');
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts", "--port", "0", "--gateway-port", "0", "--demo", "false", "--expo-hall-file", file], { cwd: repoRoot });
      let output = "";
      child.stdout.on("data", (d) => { output += d; });
      child.stderr.on("data", (d) => { output += d; });
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.on("close", (code) => { clearTimeout(timer); resolve({ code, output }); }); // "close": after the output is all read
    });
    expect(result.code).toBe(1);
    expect(result.output).toContain("broken-hall.json");
    expect(result.output).toMatch(/line 2/);
  }, 30_000);
});

describe("who sees whom", () => {
  it("each visitor sees exactly the visitors within the interest radius, and one who leaves is gone for everyone", async () => {
    const a = await joinExpo(node, HALL, { name: "A", avatar: "fox" });
    const b = await joinExpo(node, HALL, { name: "B" });
    const c = await joinExpo(node, HALL, { name: "C" });
    expect(new Set([a.visitorId, b.visitorId, c.visitorId]).size).toBe(3);
    a.move(10, 10, 0);
    b.move(25, 10, 0); // 15 m from A: within 20
    c.move(60, 50, 0); // far from both
    // everyone starts at the spawn point: wait for the moves to land before judging views
    await waitFor(() => b.neighbours.get(a.visitorId)?.x === 10 && a.neighbours.get(b.visitorId)?.x === 25, 5000, "A and B see each other's moves");
    await waitForNeighbours(a, [b.visitorId], "A sees B only");
    await waitForNeighbours(b, [a.visitorId], "B sees A only");
    await waitForNeighbours(c, [], "C sees nobody");
    expect(b.neighbours.get(a.visitorId)).toMatchObject({ name: "A", avatar: "fox", x: 10, y: 10, seq: 1 });

    // B walks out of A's radius: gone for A; back in: appears again
    b.move(31, 10, 0); // 21 m
    await waitForNeighbours(a, [], "B out of A's view");
    b.move(29.5, 10, 0); // 19.5 m
    await waitForNeighbours(a, [b.visitorId], "B back in A's view");
    await waitFor(() => a.neighbours.get(b.visitorId)?.x === 29.5, 3000, "A sees B's newest position");
    // an avatar change reaches those who see B
    b.move(29, 10, 0, { avatar: "owl" });
    await waitFor(() => a.neighbours.get(b.visitorId)?.avatar === "owl", 3000, "A sees B's new avatar");

    await b.leave();
    await waitForNeighbours(a, [], "B gone for A after leaving");
    // the room goes on for everyone else
    c.move(12, 12, 0);
    await waitForNeighbours(a, [c.visitorId], "A sees C");
  });

  it("visitors joining together at the spawn point each see all the others (frames flushed with the welcome are not lost)", async () => {
    const hallId = `crowd-${randomUUID().slice(0, 6)}`;
    expect((await openHall(node, smallHall(hallId))).status).toBe(201);
    const crowd = await Promise.all(Array.from({ length: 40 }, (_, i) => joinExpo(node, hallId, { name: `c${i}` })));
    // nobody moves: the only news anyone gets is who appeared at the spawn point
    for (const visitor of crowd) {
      const others = crowd.filter((o) => o !== visitor).map((o) => o.visitorId);
      await waitForNeighbours(visitor, others, `visitor ${visitor.visitorId} sees the other 39`);
      expect(visitor.neighbours.get(others[0])!.name).toMatch(/^c\d+$/);
    }
  });

  it("with the tick's frames spread over slices, every view settles to exactly the visitors within the radius", async () => {
    const hallId = `settle-${randomUUID().slice(0, 6)}`;
    expect((await openHall(node, smallHall(hallId))).status).toBe(201);
    const crowd = await Promise.all(Array.from({ length: 80 }, () => joinExpo(node, hallId)));
    const random = prng(99);
    const where = new Map<number, { x: number; y: number }>();
    for (let round = 0; round < 3; round++) {
      for (const visitor of crowd) {
        const x = Math.fround(random() * 100), y = Math.fround(random() * 60);
        visitor.move(x, y, 0);
        where.set(visitor.visitorId, { x, y });
      }
      await sleep(120);
    }
    await waitFor(() => crowd.every((v) => v.ackSeq === 3), 5000, "every visitor's last move acknowledged");
    for (const visitor of crowd) {
      const me = where.get(visitor.visitorId)!;
      const expected = crowd.filter((o) => o !== visitor && (where.get(o.visitorId)!.x - me.x) ** 2 + (where.get(o.visitorId)!.y - me.y) ** 2 <= 20 * 20).map((o) => o.visitorId);
      await waitForNeighbours(visitor, expected, `visitor ${visitor.visitorId}'s settled view`);
      for (const id of expected) expect(visitor.neighbours.get(id)).toMatchObject(where.get(id)!);
    }
  });

  it("notifies entering and leaving areas and booths coming near", async () => {
    const v = await joinExpo(node, HALL);
    const log = new ExpoLog(v);
    v.move(15, 35, 0); // 5 m south of acme's area: near (booth radius 6), not inside
    await log.waitFor("boothNear", (id) => id === "acme", "acme near");
    expect(v.areas.has("acme")).toBe(false);
    v.move(15, 45, 0); // inside acme
    await log.waitFor("areaEntered", (id) => id === "acme", "entered acme");
    v.move(50, 25, 0); // inside the stage, far from acme
    await log.waitFor("areaEntered", (id) => id === "stage", "entered the stage");
    await log.waitFor("areaLeft", (id) => id === "acme", "left acme");
    await log.waitFor("boothFar", (id) => id === "acme", "acme far");
    expect([...v.areas]).toEqual(["stage"]);
  });
});

describe("host tools", () => {
  it("an announcement to one area reaches exactly the visitors inside it; one to the hall reaches everyone", async () => {
    const host = await joinExpo(node, HALL, { role: "host", name: "Host" });
    expect(host.host).toBeDefined();
    const inside = await Promise.all([joinExpo(node, HALL), joinExpo(node, HALL)]);
    const outside = await Promise.all([joinExpo(node, HALL), joinExpo(node, HALL), joinExpo(node, HALL)]);
    const logs = new Map([...inside, ...outside, host].map((s) => [s, new ExpoLog(s)]));
    inside[0].move(45, 25, 0);
    inside[1].move(55, 22, 0);
    outside[0].move(35, 25, 0); // just west of the stage
    outside[1].move(50, 31, 0); // just north
    outside[2].move(90, 5, 0);
    host.move(30, 10, 0);
    await waitFor(() => inside.every((s) => s.areas.has("stage")), 5000, "both inside the stage");

    const result = await host.host!.announce("Keynote starts now", "stage");
    expect(result.delivered).toBe(2);
    await Promise.all(inside.map((s) => logs.get(s)!.waitFor("announcement", (a) => a.text === "Keynote starts now", "area announcement inside")));
    await sleep(300);
    for (const s of [...outside, host]) expect(logs.get(s)!.of("announcement")).toEqual([]);
    expect(logs.get(inside[0])!.of("announcement")[0]).toMatchObject({ areaId: "stage", fromName: "Host" });

    const hall = await host.host!.announce("Doors close at six");
    expect(hall.delivered).toBe(6);
    await Promise.all([...inside, ...outside, host].map((s) => logs.get(s)!.waitFor("announcement", (a) => a.text === "Doors close at six", "hall announcement")));

    await refusedWith(host.host!.announce("to nowhere", "no-such-area"), ErrorCode.UNKNOWN_TARGET);
    await refusedWith(host.host!.announce(""), ErrorCode.WRONG_TYPE);
    // even a host is bounded: a burst of commands beyond 20 is refused
    const burst = await Promise.all(Array.from({ length: 30 }, () => host.host!.pin("x").then(() => "ok", (e: TsunagiError) => e.code)));
    expect(burst.filter((r) => r === ErrorCode.RATE_LIMITED).length).toBeGreaterThanOrEqual(5);
  });

  it("presentations and the pinned message reach everyone, and visitors joining later get them in their welcome", async () => {
    const host = await joinExpo(node, HALL, { role: "host" });
    const v = await joinExpo(node, HALL);
    const log = new ExpoLog(v);
    await host.host!.startPresentation("bolt", "Autonomous inspection");
    await host.host!.pin("Welcome! Wi-Fi: tsunagi-guest");
    await log.waitFor("boothState", (s) => s.boothId === "bolt" && s.live, "presentation started");
    await log.waitFor("pinned", (p) => p.text.startsWith("Welcome!"), "pinned message");
    const late = await joinExpo(node, HALL);
    expect(late.presentations.get("bolt")).toMatchObject({ live: true, title: "Autonomous inspection" });
    expect(late.pinned.text).toBe("Welcome! Wi-Fi: tsunagi-guest");
    await host.host!.stopPresentation("bolt");
    await host.host!.pin("");
    await log.waitFor("boothState", (s) => s.boothId === "bolt" && !s.live, "presentation stopped");
    const later = await joinExpo(node, HALL);
    expect(later.presentations.size).toBe(0);
    expect(later.pinned.text).toBe("");
    await refusedWith(host.host!.startPresentation("no-booth"), ErrorCode.UNKNOWN_TARGET);
  });

  it("a visitor cannot use host tools", async () => {
    const v = await joinExpo(node, HALL);
    expect(v.host).toBeUndefined();
    await refusedWith(v.request({ hostCommand: { announce: { text: "I am the host now" } } }), ErrorCode.FORBIDDEN);
    await refusedWith(v.request({ analyticsRequest: {} }), ErrorCode.FORBIDDEN);
  });

  it("a muted visitor's chat is refused MUTED until unmuted; others chat on", async () => {
    const host = await joinExpo(node, HALL, { role: "host" });
    const loud = await joinExpo(node, HALL, { name: "Loud", sub: "loud-person" });
    const other = await joinExpo(node, HALL, { name: "Other" });
    const loudLog = new ExpoLog(loud);
    await host.host!.mute(loud.visitorId, 0, "please keep it civil");
    await loudLog.waitFor("moderation", (n) => n.action === tsunagi.v1.Moderate.Action.MUTE, "mute notice");
    const refused = await refusedWith(loud.chat({ kind: "hall" }, "let me speak"), ErrorCode.MUTED);
    expect(refused.message).toMatch(/muted/);
    expect((await other.chat({ kind: "hall" }, "hello all")).text).toBe("hello all");
    // the mute follows the person, not the connection
    await loud.leave();
    const again = await joinExpo(node, HALL, { sub: "loud-person" });
    await refusedWith(again.chat({ kind: "hall" }, "rejoined to speak"), ErrorCode.MUTED);
    await host.host!.unmute(again.visitorId);
    await waitFor(async () => (await again.chat({ kind: "hall" }, "thank you").then(() => true, () => false)), 3000, "chat after unmute");
  });

  it("a kicked visitor is disconnected with KICKED and may rejoin; a banned one cannot rejoin until unbanned", async () => {
    const host = await joinExpo(node, HALL, { role: "host" });
    const kicked = await joinExpo(node, HALL, { sub: "kicked-person" });
    const kickedLog = new ExpoLog(kicked);
    const connections = async () => Number((await (await fetch(`${node.httpUrl}/metrics`)).text()).match(/^tsunagi_connections (\d+)/m)?.[1]);
    const withKicked = await connections();
    await host.host!.kick(kicked.visitorId, "spam");
    const leave = await kickedLog.waitFor("leave", () => true, "kicked visitor's leave");
    expect(leave.error?.code).toBe(ErrorCode.KICKED);
    // The session ends at once: no reconnection seat (20 s) through which it could come back.
    await waitFor(async () => (await connections()) === withKicked - 1, 5000, "the kicked session ended, with no seat kept");
    await joinExpo(node, HALL, { sub: "kicked-person" }); // may come back

    const banned = await joinExpo(node, HALL, { sub: "banned-person" });
    const bannedLog = new ExpoLog(banned);
    await host.host!.ban({ visitorId: banned.visitorId }, "harassment");
    expect((await bannedLog.waitFor("leave", () => true, "banned visitor's leave")).error?.code).toBe(ErrorCode.BANNED);
    await refusedWith(joinExpo(node, HALL, { sub: "banned-person" }), ErrorCode.BANNED);
    await joinExpo(node, HALL, { sub: "someone-else" }); // others still join
    await host.host!.unban("banned-person");
    await joinExpo(node, HALL, { sub: "banned-person" });
  });
});

describe("chat", () => {
  it("booth chat reaches those at the booth, direct chat one visitor, and moderation masks blocked words", async () => {
    const [at1, at2, away] = await Promise.all([joinExpo(node, HALL), joinExpo(node, HALL), joinExpo(node, HALL)]);
    const logs = [at1, at2, away].map((s) => new ExpoLog(s));
    at1.move(12, 42, 0);
    at2.move(18, 48, 0);
    away.move(50, 10, 0);
    await waitFor(() => at1.areas.has("acme") && at2.areas.has("acme"), 5000, "both at acme");

    const sent = await at1.chat({ kind: "booth", target: "acme" }, "what a heck of a robot");
    expect(sent.text).toBe("what a **** of a robot");
    await logs[1].waitFor("chat", (m) => m.messageId === sent.messageId, "booth chat at the booth");
    await sleep(200);
    expect(logs[2].of("chat")).toEqual([]);
    expect(logs[0].of("chat")).toEqual([]); // the sender's copy is the reply, not a push
    await refusedWith(away.chat({ kind: "booth", target: "acme" }, "hello from afar"), ErrorCode.FORBIDDEN);
    await refusedWith(away.chat({ kind: "booth", target: "nope" }, "hello"), ErrorCode.UNKNOWN_TARGET);

    const direct = await away.chat({ kind: "direct", target: at2.visitorId }, "psst");
    await logs[1].waitFor("chat", (m) => m.messageId === direct.messageId, "direct message");
    await sleep(200);
    expect(logs[0].of("chat").some((m) => m.messageId === direct.messageId)).toBe(false);
    await refusedWith(away.chat({ kind: "direct", target: 999_999 }, "anyone?"), ErrorCode.UNKNOWN_TARGET);
    await refusedWith(away.chat({ kind: "hall" }, ""), ErrorCode.WRONG_TYPE);
  });

  it("chat beyond the rate is refused RATE_LIMITED", async () => {
    const v = await joinExpo(node, HALL);
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => v.chat({ kind: "hall" }, `message ${i}`).then(() => "ok", (e: TsunagiError) => e.code)));
    expect(results.filter((r) => r === "ok").length).toBe(3); // the configured burst
    expect(results.filter((r) => r === ErrorCode.RATE_LIMITED).length).toBe(3);
  });
});

describe("bad input", () => {
  it("out-of-hall positions, NaN, stale seqs, malformed protobuf and move floods get coded errors; everyone else is served", async () => {
    const watcher = await joinExpo(node, HALL);
    const bad = await joinExpo(node, HALL);
    const badLog = new ExpoLog(bad);
    watcher.move(80, 10, 0);
    bad.move(85, 10, 0);
    await waitForNeighbours(watcher, [bad.visitorId], "watcher sees bad");

    bad.move(150, 10, 0);
    const outside = await badLog.waitFor("error", (e) => e.code === ErrorCode.OUT_OF_HALL, "OUT_OF_HALL");
    expect(outside.message).toMatch(/outside the hall/);
    await sleep(200);
    expect(watcher.neighbours.get(bad.visitorId)?.x).toBe(85); // it stayed where it was

    bad.move(Number.NaN, 10, 0);
    await badLog.waitFor("error", (e) => e.code === ErrorCode.WRONG_TYPE, "WRONG_TYPE for NaN");

    // raw bytes that are not an Envelope
    (bad as any).session.room.sendBytes("pb", new Uint8Array([0xff, 0xff, 0xff]));
    await badLog.waitFor("error", (e) => e.code === ErrorCode.MALFORMED_PROTOBUF, "MALFORMED_PROTOBUF");

    // a flood far beyond max_move_hz
    for (let i = 0; i < 200; i++) bad.move(85 + (i % 10) * 0.1, 12, 0);
    await badLog.waitFor("error", (e) => e.code === ErrorCode.RATE_LIMITED, "RATE_LIMITED for the flood");

    // the room still serves both: the watcher keeps getting the others' moves
    const other = await joinExpo(node, HALL);
    other.move(78, 12, 0);
    await waitFor(() => watcher.neighbours.has(other.visitorId), 5000, "watcher sees a newcomer after the flood");
    await sleep(1100); // the flood window passes
    bad.move(86, 14, 0);
    await waitFor(() => watcher.neighbours.get(bad.visitorId)?.y === 14, 5000, "bad's next valid move is applied");
    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/tsunagi_errors_total\{code="OUT_OF_HALL",source="expo"\} [1-9]/);
    expect(metrics).toMatch(/tsunagi_errors_total\{code="RATE_LIMITED",source="(expo|flood)"\} [1-9]/);
  });

  it("a forged zone handoff in the join options is refused FORBIDDEN", async () => {
    const client = new TsunagiClient({ url: node.httpUrl, token: await testToken(clusterName, "visitor", "forger") });
    const forged = { payload: JSON.stringify({ v: { roomId: HALL, visitorId: 1, subject: "forger", x: 1, y: 1 }, exp: Date.now() + 60_000 }), mac: "AAAA" };
    await refusedWith(client.joinById(HALL, { handoff: forged }), ErrorCode.FORBIDDEN);
  });

  it("joining a hall that does not exist is refused UNKNOWN_ROOM", async () => {
    const client = new TsunagiClient({ url: node.httpUrl, token: await testToken(clusterName, "visitor") });
    await refusedWith(ExpoSession.join(client, "no-such-hall"), ErrorCode.UNKNOWN_ROOM);
  });
});

describe("analytics", () => {
  it("the export of a scripted walk matches the expected visits, uniques and dwell times, as JSON and CSV", async () => {
    const hallId = `walk-${randomUUID().slice(0, 6)}`;
    expect((await openHall(node, smallHall(hallId))).status).toBe(201);
    const a = await joinExpo(node, hallId, { sub: "walker-a" });
    const b = await joinExpo(node, hallId, { sub: "walker-b" });
    const outside = { x: 50, y: 10 };
    const inAcme = { x: 15, y: 45 };
    const inBolt = { x: 75, y: 45 };
    const stamps: Record<string, number> = {};
    const at = (label: string) => { stamps[label] = Date.now(); };
    // a: acme 1200 ms, out 400 ms, acme 800 ms; b: acme 600 ms, then bolt 1000 ms, still inside at export
    a.move(outside.x, outside.y, 0); b.move(outside.x, outside.y, 0);
    await sleep(200);
    a.move(inAcme.x, inAcme.y, 0); at("a-in-1");
    b.move(inAcme.x, inAcme.y, 0); at("b-in-acme");
    await sleep(600);
    b.move(inBolt.x, inBolt.y, 0); at("b-in-bolt");
    await sleep(600);
    a.move(outside.x, outside.y, 0); at("a-out-1");
    await sleep(400);
    a.move(inAcme.x, inAcme.y, 0); at("a-in-2");
    await sleep(800);
    a.move(outside.x, outside.y, 0); at("a-out-2");
    await sleep(200);

    const host = await testToken(clusterName, "host");
    const response = await fetch(`${node.httpUrl}/expo/halls/${hallId}/analytics`, { headers: { authorization: `Bearer ${host}` } });
    expect(response.status).toBe(200);
    const report = await response.json();
    const exportedAt = Date.now();
    const acme = report.booths.find((booth: any) => booth.boothId === "acme");
    const bolt = report.booths.find((booth: any) => booth.boothId === "bolt");
    const tolerance = 250; // network and tick jitter between the script's clock and the room's (a busy machine's too)
    expect(acme.visits).toBe(3);
    expect(acme.uniqueVisitors).toBe(2);
    expect(acme.currentVisitors).toBe(0);
    const acmeExpected = (stamps["a-out-1"] - stamps["a-in-1"]) + (stamps["a-out-2"] - stamps["a-in-2"]) + (stamps["b-in-bolt"] - stamps["b-in-acme"]);
    expect(Math.abs(acme.dwellTotalMs - acmeExpected)).toBeLessThan(tolerance);
    expect(Math.abs(acme.dwellMeanMs - acmeExpected / 3)).toBeLessThan(tolerance);
    expect(bolt.visits).toBe(1);
    expect(bolt.currentVisitors).toBe(1);
    const boltExpected = exportedAt - stamps["b-in-bolt"];
    expect(Math.abs(bolt.dwellTotalMs - boltExpected)).toBeLessThan(tolerance + 100);
    expect(report.uniqueVisitors).toBe(2);
    expect(report.currentVisitors).toBe(2);
    expect(report.heatmap.cols).toBe(20); // 100 m / 5 m cells
    expect(report.heatmap.rows).toBe(12);

    const csv = await (await fetch(`${node.httpUrl}/expo/halls/${hallId}/analytics?format=csv`, { headers: { authorization: `Bearer ${host}` } })).text();
    const lines = csv.trim().split("\n");
    expect(lines[0]).toBe("booth_id,visits,unique_visitors,dwell_total_s,dwell_mean_s,current_visitors");
    const acmeRow = lines.find((line) => line.startsWith("acme,"))!.split(",");
    expect(acmeRow.slice(0, 3)).toEqual(["acme", "3", "2"]);
    expect(Math.abs(Number(acmeRow[3]) * 1000 - acmeExpected)).toBeLessThan(tolerance);
    const heatmapCsv = await (await fetch(`${node.httpUrl}/expo/halls/${hallId}/analytics?format=csv&table=heatmap`, { headers: { authorization: `Bearer ${host}` } })).text();
    expect(heatmapCsv.split("\n")[0]).toBe("col,row,x,y,visitor_seconds");

    // the host's live query gives the same figures
    const hostSession = await joinExpo(node, hallId, { role: "host" });
    const live = await hostSession.host!.analytics();
    expect(live.booths.find((booth) => booth.boothId === "acme")!.visits).toBe(3);
    // and only hosts may export
    const refused = await fetch(`${node.httpUrl}/expo/halls/${hallId}/analytics`, { headers: { authorization: `Bearer ${await testToken(clusterName, "visitor")}` } });
    expect(refused.status).toBe(403);
    const unknown = await fetch(`${node.httpUrl}/expo/halls/nope/analytics`, { headers: { authorization: `Bearer ${host}` } });
    expect(unknown.status).toBe(404);

    // closing the hall: everyone inside is told HALL_CLOSED; the figures stay exportable
    const logs = [a, b].map((s) => new ExpoLog(s));
    const closing = await fetch(`${node.httpUrl}/expo/halls/${hallId}`, { method: "DELETE", headers: { authorization: `Bearer ${host}` } });
    expect(closing.status).toBe(200);
    expect(await closing.json()).toMatchObject({ hallId, closed: [hallId], visitors: 3 });
    for (const log of logs) expect((await log.waitFor("leave", () => true, "leave on close")).error?.code).toBe(ErrorCode.HALL_CLOSED);
    const after = await (await fetch(`${node.httpUrl}/expo/halls/${hallId}/analytics`, { headers: { authorization: `Bearer ${host}` } })).json();
    const acmeAfter = after.booths.find((booth: any) => booth.boothId === "acme");
    expect(acmeAfter.visits).toBe(3);
    expect(Math.abs(acmeAfter.dwellTotalMs - acmeExpected)).toBeLessThan(tolerance);
    expect(after.currentVisitors).toBe(0);
    await refusedWith(joinExpo(node, hallId), ErrorCode.UNKNOWN_ROOM);
    const again = await fetch(`${node.httpUrl}/expo/halls/${hallId}`, { method: "DELETE", headers: { authorization: `Bearer ${host}` } });
    expect(again.status).toBe(404);
    expect((await openHall(node, smallHall(hallId))).status).toBe(201); // and it may open again
  });
});
