/**
 * Bench child: the clients of the expo bench's baseline, a vanilla Colyseus broadcast
 * room (broadcast-server.ts on the ws transport) with no area of interest: every move
 * is broadcast to every client.
 *
 * The baseline asks the server for far more than it can deliver (N × hz × N messages a
 * second), so its clients must cost as little as possible, or they, not the server,
 * would bound what is delivered. Each is therefore a raw `ws` WebSocket speaking the
 * Colyseus protocol itself rather than an SDK client: matchmaking by HTTP (the first
 * client of the first process creates the room, every other one joins it by id), the
 * JOIN_ROOM acknowledgement, then ROOM_DATA frames. Sending: the same move as a visitor
 * of the expo phase ("stamp" message, payload [sentAtMs, x, y, heading]), on the same
 * schedule (sendOnSchedule). Receiving: every ROOM_DATA frame is counted, and only
 * every `sampleEvery`-th frame of each client is decoded, for its sentAtMs (latency).
 *
 * Argument: BaselineLoadConfig. Ready (LoadReady, with the room id) once every client
 * has joined; none sends before `go`. Calls: go, progress, startWindow, stopWindow → LoadWindow.
 */
import { WebSocket } from "ws";
import { stampMessage } from "./broadcast-protocol.ts";
import {
  random, RandomWalk, sendOnSchedule,
  type BaselineLoadConfig, type LoadReady, type LoadWindow,
} from "./expo-protocol.ts";
import { LoadMeasureWindow, log, wallClockMs } from "./measure.ts";
import { countInto, withConcurrency, withTimeout } from "./tasks.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as BaselineLoadConfig;

/** Colyseus protocol codes (@colyseus/shared-types Protocol). */
const JOIN_ROOM = 10;
const ERROR = 11;
const ROOM_DATA = 13;
const joinTimeoutMs = 30_000;

let sent = 0;
let delivered = 0;
let totalSent = 0;
let totalDelivered = 0;
let clientsLost = 0;
const errors: Record<string, number> = {};
const window = new LoadMeasureWindow();

// --- the Colyseus frames this client writes and reads ------------------------------

/** `[ROOM_DATA][type as a msgpack str]`: what every move frame starts with. */
const moveHeader = Buffer.from([ROOM_DATA, 0xa0 | stampMessage.length, ...Buffer.from(stampMessage, "utf8")]);

/** A move frame: the header, then the payload [sentAtMs, x, y, heading] as a msgpack array of float64. */
function moveFrame(sentAtMs: number, x: number, y: number, heading: number): Buffer {
  const frame = Buffer.allocUnsafe(moveHeader.length + 1 + 4 * 9);
  moveHeader.copy(frame, 0);
  let offset = moveHeader.length;
  frame[offset++] = 0x94; // fixarray of 4
  for (const value of [sentAtMs, x, y, heading]) {
    frame[offset++] = 0xcb; // float64
    frame.writeDoubleBE(value, offset);
    offset += 8;
  }
  return frame;
}

/**
 * The sentAtMs of a broadcast frame: `[ROOM_DATA][str type][array header][number]`, the
 * number as the server's msgpack encoder wrote it (float64, float32 or an integer).
 * NaN for anything else.
 */
function sentAtOf(frame: Buffer): number {
  let offset = 1;
  const typeHeader = frame[offset++]!;
  if ((typeHeader & 0xe0) !== 0xa0) return Number.NaN; // not a fixstr type
  offset += typeHeader & 0x1f;
  const arrayHeader = frame[offset++]!;
  if ((arrayHeader & 0xf0) !== 0x90) return Number.NaN; // not a fixarray payload
  const kind = frame[offset++]!;
  switch (kind) {
    case 0xcb: return frame.readDoubleBE(offset);
    case 0xca: return frame.readFloatBE(offset);
    case 0xce: return frame.readUInt32BE(offset);
    case 0xcf: return Number(frame.readBigUInt64BE(offset));
    case 0xd3: return Number(frame.readBigInt64BE(offset));
    default: return kind < 0x80 ? kind : Number.NaN;
  }
}

// --- clients -------------------------------------------------------------------------

interface SeatReservation { name: string; roomId: string; sessionId: string; processId?: string; publicAddress?: string }

async function matchmake(method: "create" | "joinById", target: string): Promise<SeatReservation> {
  const response = await fetch(`${config.url}/matchmake/${method}/${target}`, {
    method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: "{}",
  });
  const body = await response.json() as SeatReservation & { error?: string; code?: number };
  if (!response.ok || !body.sessionId) throw new Error(`matchmake ${method} ${target}: HTTP ${response.status} ${JSON.stringify(body).slice(0, 200)}`);
  return body;
}

class BaselineClient {
  private socket!: WebSocket;
  private received = 0;
  private stop?: () => void;
  private closing = false;
  roomId = "";

  constructor(readonly index: number, private readonly walk: RandomWalk) {}

  async join(roomId: string | undefined): Promise<void> {
    const seat = roomId === undefined ? await matchmake("create", "bench") : await matchmake("joinById", roomId);
    this.roomId = seat.roomId;
    const address = seat.publicAddress ?? new URL(config.url).host;
    const url = `ws://${address}/${seat.processId}/${seat.roomId}?sessionId=${encodeURIComponent(seat.sessionId)}`;
    this.socket = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.on("message", (data: Buffer) => {
        const code = data[0];
        if (code === ROOM_DATA) return this.receive(data);
        if (code === JOIN_ROOM) {
          this.socket.send(Buffer.from([JOIN_ROOM])); // acknowledge: the room now sends us its broadcasts
          resolve();
        } else if (code === ERROR) {
          countInto(errors, "room error");
        }
      });
      this.socket.once("close", (closeCode) => {
        reject(new Error(`client ${this.index}: closed (${closeCode}) before joining`));
        if (!this.closing) { clientsLost++; log(`client ${this.index}: connection closed (${closeCode})`); }
      });
    });
  }

  private receive(frame: Buffer): void {
    totalDelivered++;
    if (!window.measuring) return;
    delivered++;
    if (++this.received % config.sampleEvery !== 0) return;
    const sentAtMs = sentAtOf(frame);
    if (Number.isFinite(sentAtMs)) window.latency.record(wallClockMs() - sentAtMs);
    else countInto(errors, "undecodable broadcast");
  }

  go(): void {
    const dtS = 1 / config.hz;
    this.stop ??= sendOnSchedule(this.index, config.total, config.hz, wallClockMs, () => {
      if (this.socket.readyState !== WebSocket.OPEN) return;
      this.walk.step(dtS);
      this.socket.send(moveFrame(wallClockMs(), this.walk.x, this.walk.y, this.walk.heading));
      totalSent++;
      if (window.measuring) sent++;
    });
  }
}

async function joinAll(): Promise<{ clients: BaselineClient[]; roomId: string }> {
  const all = Array.from({ length: config.count }, (_, i) => {
    const index = config.firstIndex + i;
    return new BaselineClient(index, new RandomWalk(config.width, config.height, random(config.seed * 1_000_003 + index)));
  });
  let roomId = config.roomId;
  const startedAt = performance.now();
  let start = 0;
  if (roomId === undefined) {
    // One create, then joins by id: concurrent creates would open several rooms.
    await withTimeout(all[0]!.join(undefined), joinTimeoutMs, "creating the broadcast room");
    roomId = all[0]!.roomId;
    start = 1;
  }
  let joined = start;
  const step = Math.max(1, Math.round(config.count / 5));
  await withConcurrency(all.slice(start), config.joinConcurrency, async (client) => {
    await withTimeout(client.join(roomId), joinTimeoutMs, `client ${client.index}: join`);
    if (++joined % step === 0 || joined === config.count) log(`joined ${joined}/${config.count} clients (${((performance.now() - startedAt) / 1000).toFixed(1)} s)`);
  });
  return { clients: all, roomId: roomId! };
}

function go(): void {
  for (const client of clients) client.go();
}

function progress() {
  return { sent: totalSent, frames: totalDelivered, updates: totalDelivered, handoffs: 0, lost: clientsLost, errors };
}

function startWindow(): void {
  sent = delivered = 0;
  window.start();
}

function stopWindow(): LoadWindow {
  return {
    ...window.stop(), sent, frames: delivered, updates: delivered, appeared: 0, moved: delivered, gone: 0,
    handoffs: 0, handoffsTotal: 0, errors, sessionsLost: clientsLost, neighboursMean: 0, alive: config.count - clientsLost,
  };
}

const { clients, roomId } = await joinAll();
const ready: LoadReady = { joined: clients.length, roomId };
serveParent({ go, progress, startWindow, stopWindow }, ready);
