/**
 * Bench child: the visitors of the handoff bench, each a stock SDK ExpoSession in the
 * source region's city (every socket through that city's delay proxies, which live in
 * the parent), joined through the nearest region, placed at a random point, then
 * random-walking at `moveHz` for the whole run. The clients live apart from the proxies
 * so that neither's work delays the other's clock.
 *
 * What each visitor stamps (wallClockMs(): monotonic), per move of its room:
 * - every `frame` event, with the Colyseus room its RoomSession is in at that moment
 *   (the RoomSession's current room). The SDK applies a frame only from the room it is
 *   in now: frames from the old home stop counting the instant the session switches, and
 *   the new home's first frames (even those that came in the same socket read as its
 *   SessionResumed) are applied after the switch. So a frame whose room differs from the
 *   previous frame's is the new home's first, and the previous frame was the old home's
 *   last: that gap is the pause. No timestamp guessing around the `moved` event is needed
 *   (that event may come just before or just after the new home's first frame);
 * - RoomHandoff received and seat joined, by wrapping the RoomSession's follow function
 *   (the one TsunagiClient gives it): it is called as the RoomHandoff arrives and
 *   resolves once the new home's Colyseus join answered. Observation only: the same
 *   function does the same work;
 * - SessionResumed: the `moved` event, with the SDK's resent and pauseMs.
 *
 * Inputs: every move carries the visitor's next seq. A frame's ackSeq below one it was
 * already sent, or a neighbour's seq below one the viewer already saw, means an older
 * move was applied after a newer one (applied again). At the end (`settle`) each
 * visitor's ackSeq should equal its last move's seq.
 *
 * A room restored after its node was killed (failover) is one more move of it: the
 * session's recovery takes its seat (the follow function), the frames switch rooms, and
 * the `moved` event says reason "failover".
 *
 * Argument: HandoffLoadConfig. Ready: HandoffLoadReady. Calls: go (walk), progress,
 * settle (stop walking, wait for the last acks: HandoffLoadSettled; go walks again),
 * results → HandoffLoadResults, routes(proxyOf: more of HandoffLoadConfig.proxyOf, for a
 * node restarted on fresh ports).
 */
import "../../server/polyfills.ts";
import type { Room } from "@colyseus/sdk";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import type { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import type { RoomSession, SeatReservation } from "../../client-sdk/RoomSession.ts";
import type { TsunagiError } from "../../client-sdk/errors.ts";
import { RegionProbe } from "../../common/RegionProbe.ts";
import { TokenService } from "../../server/auth/tokens.ts";
import { random, RandomWalk, sendOnSchedule } from "./expo-protocol.ts";
import type { HandoffLoadConfig, HandoffLoadProgress, HandoffLoadReady, HandoffLoadResults, HandoffLoadSettled, HandoffMarks } from "./handoff-protocol.ts";
import { LatencyHistogram, log, LoopDelayWindow, wallClockMs } from "./measure.ts";
import { joinHall } from "./expo-join.ts";
import { countInto, withConcurrency } from "./tasks.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as HandoffLoadConfig;

/** How long `settle` waits for every visitor's last move to be acknowledged. */
const settleTimeoutMs = 10_000;

interface Visitor {
  index: number;
  walk: RandomWalk;
  session: ExpoSession;
  stop?: () => void;
  /** The seq of its newest move. */
  lastSeq: number;
  /** The last frame: when, and from which Colyseus room. */
  lastFrameAt: number;
  lastRoom?: Room;
  /** Its room's moves, in order; the newest is being filled in. */
  marks: HandoffMarks[];
  /** Room changes seen in frames. */
  switches: number;
  moved: number;
  maxAck: number;
  /** The newest seq seen per neighbour. */
  seen: Map<number, number>;
}

let sent = 0;
let frames = 0;
let ackRegressions = 0;
let neighbourRegressions = 0;
let sessionsLost = 0;
const errors: Record<string, number> = {};
const frameGaps = new LatencyHistogram();
const loopDelay = new LoopDelayWindow();
let eventLoopDelayP99Ms = Number.NaN;

const issuer = new TokenService({ key: Buffer.from(config.issuer.tokenKeyHex, "hex"), audience: config.issuer.audience });
/** One probe for every visitor: they are in one city. */
const probe = new RegionProbe({ regions: config.regions });
/** Like the harness' located client: a URL naming a node goes through the city's proxy in front of it. */
const urlBuilder = (url: URL) => {
  const proxy = config.proxyOf[url.host];
  if (proxy) url.host = proxy;
  return url.toString();
};

type Follow = (reservation: SeatReservation) => Promise<Room>;

/** The visitor's current mark: the one its room's move under way fills in. */
function current(visitor: Visitor): HandoffMarks {
  let marks = visitor.marks[visitor.switches];
  if (!marks) visitor.marks[visitor.switches] = marks = {};
  return marks;
}

/**
 * Stamps RoomHandoff received / seat joined: wraps the follow function of the
 * visitor's RoomSession (kept across moves: the session switches rooms inside).
 */
function instrumentFollow(visitor: Visitor, session: RoomSession): void {
  // The follow function the session's RoomFollower was handed (RoomFollower.ts, FollowerHost.follow).
  const host = (session["follower"] as unknown as { host: { follow?: Follow } }).host;
  const follow = host.follow;
  if (!follow) throw new Error("the visitor's RoomSession cannot follow its room (no follow function)");
  host.follow = async (reservation) => {
    current(visitor).received = wallClockMs();
    const room = await follow(reservation);
    current(visitor).joined = wallClockMs();
    return room;
  };
}

function watch(visitor: Visitor): void {
  const { session } = visitor;
  const roomSession = session["session"];
  instrumentFollow(visitor, roomSession);
  session.on("frame", (frame) => {
    const now = wallClockMs();
    frames++;
    // The RoomSession's room now: the frame came from it (frames from any other are not applied).
    const room = session["session"].room;
    if (visitor.lastRoom !== undefined && room !== visitor.lastRoom) {
      const marks = current(visitor);
      marks.lastSource = visitor.lastFrameAt;
      marks.firstTarget = now;
      visitor.switches++;
    } else if (visitor.lastRoom !== undefined) {
      frameGaps.record(now - visitor.lastFrameAt);
    }
    visitor.lastRoom = room;
    visitor.lastFrameAt = now;
    if (frame.ackSeq < visitor.maxAck) ackRegressions++;
    else visitor.maxAck = frame.ackSeq;
    for (const list of [frame.appeared, frame.moved]) {
      for (const state of list) {
        const id = state.visitorId ?? 0;
        const seq = state.seq ?? 0;
        const seen = visitor.seen.get(id);
        if (seen !== undefined && seq < seen) neighbourRegressions++;
        else visitor.seen.set(id, seq);
      }
    }
  });
  session.on("moved", (event) => {
    // The new home's first frames may have come with its SessionResumed and been applied
    // just before this event (their switch counted): the move under way is the last one begun.
    const marks = visitor.marks[visitor.moved] ?? current(visitor);
    marks.resumed = wallClockMs();
    marks.resent = event.resent;
    marks.sdkPauseMs = event.pauseMs;
    marks.fromRegionId = event.fromRegionId;
    marks.toRegionId = event.toRegionId;
    marks.reason = event.reason;
    visitor.moved++;
  });
  const who = `visitor ${visitor.index}`;
  session.on("error", (error: TsunagiError) => {
    const name = error.codeName ?? String(error.code);
    if (errors[name] === undefined) log(`${who}: error [${error.code} ${name}] ${error.message}`);
    countInto(errors, name);
  });
  session.on("leave", (event) => {
    sessionsLost++;
    log(`${who}: session ended (close ${event.code}${event.error ? `, ${event.error.codeName}: ${event.error.message}` : ""})`);
  });
}

async function joinOne(index: number): Promise<Visitor> {
  const sub = `bench-handoff-${index}`;
  const client = new TsunagiClient({ probe, token: () => issuer.issue({ sub, role: "visitor" }), clientOptions: { urlBuilder } });
  const session = await joinHall(client, config.hallId, index, errors);
  const visitor: Visitor = {
    index, session, walk: new RandomWalk(config.width, config.height, random(config.seed * 1_000_003 + index)),
    lastSeq: session.ackSeq, lastFrameAt: 0, marks: [], switches: 0, moved: 0, maxAck: session.ackSeq, seen: new Map(),
  };
  watch(visitor);
  // Its first move places it: the room spawns everyone at the entrance.
  visitor.lastSeq = session.move(visitor.walk.x, visitor.walk.y, visitor.walk.heading);
  sent++;
  return visitor;
}

async function joinAll(): Promise<Visitor[]> {
  const all: Visitor[] = [];
  const startedAt = performance.now();
  const step = Math.max(1, Math.round(config.count / 5));
  let joined = 0;
  await withConcurrency(Array.from({ length: config.count }, (_, i) => config.firstIndex + i), config.joinConcurrency, async (index) => {
    all[index - config.firstIndex] = await joinOne(index);
    if (++joined % step === 0 || joined === config.count) log(`joined ${joined}/${config.count} visitors (${((performance.now() - startedAt) / 1000).toFixed(1)} s)`);
  });
  return all;
}

function go(): void {
  loopDelay.start();
  const dtS = 1 / config.moveHz;
  for (const visitor of visitors) {
    visitor.stop ??= sendOnSchedule(visitor.index, config.total, config.moveHz, wallClockMs, () => {
      if (visitor.session.closed) return;
      visitor.walk.step(dtS);
      visitor.lastSeq = visitor.session.move(visitor.walk.x, visitor.walk.y, visitor.walk.heading);
      sent++;
    });
  }
}

function progress(): HandoffLoadProgress {
  const alive = visitors.filter((v) => !v.session.closed);
  const moved = alive.map((v) => v.moved);
  return {
    sent, frames, alive: alive.length, lost: sessionsLost, errors,
    movedMin: moved.length ? Math.min(...moved) : 0, movedMax: moved.length ? Math.max(...moved) : 0,
  };
}

/** Stops walking (`go` starts again), then waits (up to settleTimeoutMs) until every live visitor's last move is acknowledged. */
async function settle(): Promise<HandoffLoadSettled> {
  for (const visitor of visitors) {
    visitor.stop?.();
    visitor.stop = undefined;
  }
  eventLoopDelayP99Ms = loopDelay.stopP99Ms();
  const startedAt = performance.now();
  const unacked = () => visitors.filter((v) => !v.session.closed && v.session.ackSeq !== v.lastSeq);
  while (unacked().length > 0 && performance.now() - startedAt < settleTimeoutMs) await new Promise((resolve) => setTimeout(resolve, 50));
  const left = unacked();
  return {
    waitedMs: Math.round(performance.now() - startedAt), unackedVisitors: left.length,
    unackedMoves: left.reduce((sum, v) => sum + Math.max(0, v.lastSeq - v.session.ackSeq), 0),
  };
}

function results(): HandoffLoadResults {
  return {
    marks: visitors.map((v) => v.marks),
    moved: visitors.map((v) => v.moved),
    ackRegressions, neighbourRegressions,
    unacked: visitors.map((v) => Math.max(0, v.lastSeq - v.session.ackSeq)),
    sent, frames, frameGaps: frameGaps.toData(), eventLoopDelayP99Ms, sessionsLost, errors,
    mismatched: visitors.filter((v) => v.switches !== v.moved).length,
  };
}

/** Where nodes listen now (a restarted node, on fresh ports): their addresses → the city's proxies in front of them. */
function routes(proxyOf: Record<string, string>): void {
  Object.assign(config.proxyOf, proxyOf);
}

const visitors = await joinAll();
const ready: HandoffLoadReady = { joined: visitors.length };
serveParent({ go, progress, settle, results, routes }, ready);
