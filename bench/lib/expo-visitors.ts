/**
 * Bench child: visitors of the expo bench, each a stock SDK ExpoSession
 * (`ExpoSession.join(new TsunagiClient({ url, token }), hallId, { name })`), as a web
 * or Unity client would be, with its own token: from the node's /dev/token route, or
 * signed here with the cluster's token key when the nodes run in Redis mode.
 *
 * Set-up: joins its visitors, `joinConcurrency` at a time, each then placed at once at a
 * uniformly random point of the hall (its first move: the room spawns everyone at the
 * entrance). In a zoned hall a visitor placed in another zone is handed off there, and
 * its set-up waits for that handoff, so handoffs too happen `joinConcurrency` at a time.
 * Ready (LoadReady) once all are placed; they stand still until `go`.
 *
 * `go`: every visitor random-walks (walkSpeedMps, inside the hall) and moves `hz` times
 * a second, the visitors of all load processes spread evenly over one period
 * (sendOnSchedule), each move's sentAtMs = wallClockMs(). Each frame received counts
 * its `appeared` + `moved` entries as neighbour updates, and the delivery latency of
 * each `moved` entry (wallClockMs() at receipt − its sentAtMs, relayed untouched).
 * Handoffs are counted from the session's `zone` events.
 *
 * Argument: VisitorLoadConfig. Calls: go, halt (stop walking), progress → cumulative
 * counters, startWindow, stopWindow → LoadWindow.
 */
import "../../server/polyfills.ts";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import type { TsunagiError } from "../../client-sdk/errors.ts";
import {
  distanceToRect, random, RandomWalk, sendOnSchedule,
  type LoadReady, type LoadWindow, type VisitorLoadConfig,
} from "./expo-protocol.ts";
import { LoadMeasureWindow, log, wallClockMs } from "./measure.ts";
import { joinHall } from "./expo-join.ts";
import { countInto, httpText, withConcurrency, withTimeout } from "./tasks.ts";
import { serveParent } from "./parent-channel.ts";
import { TokenService } from "../../server/auth/tokens.ts";

const config = JSON.parse(process.argv[2] ?? "null") as VisitorLoadConfig;

/** How long the handoff of a visitor placed in another zone may take during set-up. */
const placeHandoffTimeoutMs = 15_000;

/** Counters since the start (`total*`) and of the open window. */
let sent = 0;
let frames = 0;
let appeared = 0;
let moved = 0;
let gone = 0;
let handoffs = 0;
let handoffsTotal = 0;
let sessionsLost = 0;
let totalSent = 0;
let totalUpdates = 0;
let totalFrames = 0;
const errors: Record<string, number> = {};
const window = new LoadMeasureWindow();

interface Visitor {
  index: number;
  walk: RandomWalk;
  session: ExpoSession;
  stop?: () => void;
}

function countError(error: TsunagiError, who: string): void {
  const name = error.codeName ?? String(error.code);
  if (errors[name] === undefined) log(`${who}: error [${error.code} ${name}] ${error.message}`);
  countInto(errors, name);
}

/** Signs the visitors' tokens when the parent handed over the cluster's token key. */
const issuer = config.issuer && new TokenService({ key: Buffer.from(config.issuer.tokenKeyHex, "hex"), audience: config.issuer.audience });

function visitorToken(url: string, sub: string): Promise<string> {
  return issuer ? issuer.issue({ sub, role: "visitor" }) : httpText(`${url}/dev/token?role=visitor&sub=${encodeURIComponent(sub)}`);
}

async function joinOne(index: number): Promise<Visitor> {
  const url = config.urls[index % config.urls.length]!;
  const sub = `bench-visitor-${index}`;
  const client = new TsunagiClient({ url, token: () => visitorToken(url, sub) });
  const session = await joinHall(client, config.hallId, index, errors);
  const visitor: Visitor = { index, walk: new RandomWalk(config.width, config.height, random(config.seed * 1_000_003 + index)), session };
  const who = `visitor ${index}`;
  session.on("frame", (frame) => {
    totalFrames++;
    totalUpdates += frame.appeared.length + frame.moved.length;
    if (!window.measuring) return;
    frames++;
    appeared += frame.appeared.length;
    moved += frame.moved.length;
    gone += frame.gone.length;
    const now = wallClockMs();
    for (const state of frame.moved) window.latency.record(now - (state.sentAtMs ?? 0));
  });
  session.on("zone", () => {
    handoffsTotal++;
    if (window.measuring) handoffs++;
  });
  session.on("error", (error) => countError(error, who));
  session.on("leave", (event) => {
    sessionsLost++;
    log(`${who}: session ended (close ${event.code}${event.error ? `, ${event.error.codeName}: ${event.error.message}` : ""})`);
  });
  await place(visitor);
  return visitor;
}

/** The visitor's first move: to its random starting point; waits for the handoff it causes. */
async function place(visitor: Visitor): Promise<void> {
  const { session, walk } = visitor;
  const zone = config.zones.find((z) => z.id === session.zoneId);
  const handedOff = zone !== undefined && distanceToRect(zone.rect, walk.x, walk.y) > config.handoffMarginM
    ? new Promise<void>((resolve) => { const off = session.on("zone", () => { off(); resolve(); }); })
    : undefined;
  session.move(walk.x, walk.y, walk.heading, { sentAtMs: wallClockMs() });
  if (handedOff) {
    try {
      await withTimeout(handedOff, placeHandoffTimeoutMs, `visitor ${visitor.index}: handoff into its starting zone`);
    } catch (error) {
      countInto(errors, "placing handoff timed out");
      log(`${(error as Error).message}; going on without it`);
    }
  }
}

async function joinAll(): Promise<Visitor[]> {
  const visitors: Visitor[] = [];
  const startedAt = performance.now();
  const step = Math.max(1, Math.round(config.count / 5));
  const indices = Array.from({ length: config.count }, (_, i) => config.firstIndex + i);
  await withConcurrency(indices, config.joinConcurrency, async (index) => {
    visitors.push(await joinOne(index));
    if (visitors.length % step === 0 || visitors.length === config.count) {
      log(`joined and placed ${visitors.length}/${config.count} visitors (${((performance.now() - startedAt) / 1000).toFixed(1)} s)`);
    }
  });
  return visitors;
}

function go(): void {
  for (const visitor of visitors) {
    if (visitor.stop) continue;
    const dtS = 1 / config.hz;
    visitor.stop = sendOnSchedule(visitor.index, config.total, config.hz, wallClockMs, () => {
      if (visitor.session.closed) return;
      visitor.walk.step(dtS);
      const { x, y, heading } = visitor.walk;
      visitor.session.move(x, y, heading, { sentAtMs: wallClockMs() });
      totalSent++;
      if (window.measuring) sent++;
    });
  }
}

/** Stops every visitor's walk (they stay in the hall): nothing changes any more, so frames stop. */
function halt(): void {
  for (const visitor of visitors) visitor.stop?.();
}

function progress() {
  // Frames the sessions applied: those that came with a welcome are applied before this
  // file's "frame" listener exists, so the sessions' own count is the one to compare.
  const applied = visitors.reduce((sum, v) => sum + v.session.stats.frames, 0);
  return { sent: totalSent, frames: Math.max(applied, totalFrames), updates: totalUpdates, handoffs: handoffsTotal, lost: sessionsLost, errors };
}

function startWindow(): void {
  sent = frames = appeared = moved = gone = handoffs = 0;
  window.start();
}

function stopWindow(): LoadWindow {
  const { windowMs, latency, eventLoopDelayP99Ms } = window.stop();
  const alive = visitors.filter((v) => !v.session.closed);
  const neighboursMean = alive.length ? alive.reduce((sum, v) => sum + v.session.neighbours.size, 0) / alive.length : 0;
  return {
    windowMs, sent, frames, updates: appeared + moved, appeared, moved, gone, latency, eventLoopDelayP99Ms,
    handoffs, handoffsTotal, errors, sessionsLost, neighboursMean, alive: alive.length,
  };
}

const visitors = await joinAll();
const ready: LoadReady = { joined: visitors.length, handoffs: handoffsTotal };
serveParent({ go, halt, progress, startWindow, stopWindow }, ready);
