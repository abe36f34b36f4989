/**
 * What the expo bench's processes say to each other (the parent bench/expo.ts, the
 * ExpoSession load expo-visitors.ts and the raw-ws baseline load expo-baseline-load.ts),
 * and what they share: the hall layout, the visitors' random walk and the send schedule.
 * Latencies travel as measure.ts' mergeable HistogramData.
 */
import type { HistogramData } from "./measure.ts";

/** Neighbours each visitor should see on average: the hall is sized for it. */
export const targetNeighbours = 30;
/** Walking speed of every visitor, m/s. */
export const walkSpeedMps = 1.4;

/** What every load process walks: its share of the clients, their rate, the hall. */
export interface WalkLoadConfig {
  /** This process' clients are indices firstIndex .. firstIndex + count - 1 of `total`. */
  firstIndex: number;
  count: number;
  total: number;
  hz: number;
  /** Hall size, m (the walk stays inside). */
  width: number;
  height: number;
  joinConcurrency: number;
  seed: number;
}

/** One visitor load process' argument (expo-visitors.ts). */
export interface VisitorLoadConfig extends WalkLoadConfig {
  /** Matchmaking entry points (node HTTP URLs); visitor i joins through urls[i % urls.length]. */
  urls: string[];
  hallId: string;
  /** Zones of the hall (empty: one room), to know which teleports hand the visitor off. */
  zones: Array<{ id: string; rect: { x: number; y: number; w: number; h: number } }>;
  /** The nodes' --expo-handoff-margin: a visitor placed further than this outside its zone is handed off. */
  handoffMarginM: number;
  /** Sign visitor tokens with this (nodes in Redis mode have no /dev/token); absent: ask /dev/token. */
  issuer?: BenchTokenIssuer;
}

/** What a bench process needs to sign tokens the nodes accept, as an identity service would. */
export interface BenchTokenIssuer {
  /** The cluster's token key, hex. */
  tokenKeyHex: string;
  /** The cluster name. */
  audience: string;
}

/** One baseline load process' argument (expo-baseline-load.ts). */
export interface BaselineLoadConfig extends WalkLoadConfig {
  /** The broadcast server's HTTP base, e.g. http://127.0.0.1:1234. */
  url: string;
  /** Join this room; undefined: create it with the first client. */
  roomId?: string;
  /** Each client decodes the send time of every `sampleEvery`-th message it receives. */
  sampleEvery: number;
}

/** Ready data of a load process: everyone joined (and, for visitors, placed). */
export interface LoadReady {
  joined: number;
  /** Baseline: the room every client is in. */
  roomId?: string;
  /** Visitors: handoffs while placing the visitors in their starting zones. */
  handoffs?: number;
}

/** Reply of a load process' `stopWindow`: what it saw between `startWindow` and `stopWindow`. */
export interface LoadWindow {
  windowMs: number;
  /** Moves sent in the window. */
  sent: number;
  /** Frames received in the window (ExpoFrames, or broadcast messages for the baseline). */
  frames: number;
  /** Neighbour updates delivered: `appeared` + `moved` entries (baseline: messages). */
  updates: number;
  appeared: number;
  moved: number;
  gone: number;
  /** Latency of `moved` entries (baseline: of the sampled messages), ms. */
  latency: HistogramData;
  eventLoopDelayP99Ms: number;
  /** Zone handoffs in the window, and since the start (placing included). */
  handoffs: number;
  handoffsTotal: number;
  /** Coded errors since the start, by name (refused moves, failed handoffs...). */
  errors: Record<string, number>;
  /** Sessions that ended or dropped since the start. */
  sessionsLost: number;
  /** Mean size of the visitors' neighbourhood at the end of the window (visitors only). */
  neighboursMean: number;
  /** Sessions alive at the end of the window. */
  alive: number;
}

// ---------------------------------------------------------------------------------------
// The hall
// ---------------------------------------------------------------------------------------

/** Side of a square hall where `visitors` spread uniformly see `targetNeighbours` within `radius`. */
export function hallSideFor(visitors: number, radius: number): number {
  return Math.max(2 * radius, Math.round(Math.sqrt((visitors * Math.PI * radius * radius) / targetNeighbours)));
}

/**
 * A square hall of `side` metres with 20 booths: 5 per quadrant (its corners and its
 * centre), so the same booths fit a 2 × 2 zone grid without straddling a border.
 * `zoned`: split into 4 equal zones (sw, se, nw, ne), the entrance (spawn) in sw.
 */
export function benchHallLayout(hallId: string, side: number, zoned: boolean): Record<string, unknown> {
  const half = side / 2;
  const boothW = half * 0.08;
  const boothH = half * 0.06;
  const booths: Array<Record<string, unknown>> = [];
  const quadrants = [["sw", 0, 0], ["se", half, 0], ["nw", 0, half], ["ne", half, half]] as const;
  for (const [name, qx, qy] of quadrants) {
    const spots = [[0.25, 0.25], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0.75, 0.75]];
    spots.forEach(([fx, fy], i) => {
      booths.push({
        id: `${name}-${i + 1}`, name: `Booth ${name.toUpperCase()} ${i + 1}`, exhibitor: `Exhibitor ${name}-${i + 1}`,
        area: { x: qx + fx! * half - boothW / 2, y: qy + fy! * half - boothH / 2, w: boothW, h: boothH },
      });
    });
  }
  const layout: Record<string, unknown> = {
    hallId, name: `Bench hall ${hallId}`, width: side, height: side, booths,
    areas: [{ id: "main-aisle", name: "Main aisle", rect: { x: half - 2, y: 0, w: 4, h: side } }],
  };
  if (zoned) {
    layout.spawn = { x: half / 2, y: half / 2 };
    layout.zones = quadrants.map(([name, x, y]) => ({ id: name, rect: { x, y, w: half, h: half } }));
  }
  return layout;
}

/** Distance from (x, y) to a rectangle, 0 inside: the room's own rule (HallLayout). */
export { distanceToRect } from "../../rooms/expo/ZoneGeometry.ts";

// ---------------------------------------------------------------------------------------
// Walking and sending
// ---------------------------------------------------------------------------------------

/** A small deterministic PRNG (mulberry32), so runs are repeatable per seed. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A visitor's random walk: constant speed, a heading that wanders, reflected at the walls. */
export class RandomWalk {
  x: number;
  y: number;
  heading: number;

  constructor(private readonly width: number, private readonly height: number, private readonly rand: () => number) {
    this.x = rand() * width;
    this.y = rand() * height;
    this.heading = rand() * 2 * Math.PI - Math.PI;
  }

  /** Walks for `dtS` seconds. */
  step(dtS: number): void {
    this.heading += (this.rand() - 0.5) * 0.6;
    let x = this.x + Math.cos(this.heading) * walkSpeedMps * dtS;
    let y = this.y + Math.sin(this.heading) * walkSpeedMps * dtS;
    if (x < 0 || x > this.width) { x = Math.min(Math.max(x, 0), this.width); this.heading = Math.PI - this.heading; }
    if (y < 0 || y > this.height) { y = Math.min(Math.max(y, 0), this.height); this.heading = -this.heading; }
    this.heading = Math.atan2(Math.sin(this.heading), Math.cos(this.heading));
    this.x = x;
    this.y = y;
  }
}

/**
 * Sends `send()` `hz` times a second for client `index` of `total`, the clients of every
 * process of the run spread evenly over one period: the phase comes from the shared
 * wall clock (`now`, wallClockMs), so no coordination between processes is needed.
 * Scheduled against absolute due times (setInterval drifts). Returns a stop function.
 */
export function sendOnSchedule(index: number, total: number, hz: number, now: () => number, send: () => void): () => void {
  const periodMs = 1000 / hz;
  const offsetMs = (index * periodMs) / total;
  let dueMs = Math.ceil((now() - offsetMs) / periodMs) * periodMs + offsetMs;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const fire = () => {
    if (stopped) return;
    send();
    dueMs += periodMs;
    // After a stall, skip the missed periods rather than bursting them out.
    const lateMs = now() - dueMs;
    if (lateMs > periodMs) dueMs += Math.floor(lateMs / periodMs) * periodMs;
    timer = setTimeout(fire, Math.max(0, dueMs - now()));
  };
  timer = setTimeout(fire, Math.max(0, dueMs - now()));
  return () => { stopped = true; clearTimeout(timer); };
}
