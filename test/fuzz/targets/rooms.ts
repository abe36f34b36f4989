/**
 * Fuzz targets inside rooms: a client joined with a real token sends what a stranger
 * could, then a Ping. The case passes when every refusal it got was coded and the Pong
 * came back (the session, the room and the node still work). A session the server ended
 * with a coded close is reopened for the next case.
 *
 * - `room-envelope`: protobuf envelopes, well-formed, mangled or garbage, as "pb" frames;
 * - `room-message`: Colyseus messages of any type with any payload;
 * - `room-raw`: raw bytes on the WebSocket, below the Colyseus protocol.
 */
import fc from "fast-check";
import { Client, type Room } from "@colyseus/sdk";
import { decodeEnvelope, encodeEnvelope, ENVELOPE_MESSAGE_TYPE } from "../../../proto/index.ts";
import { envelopeBytes, jsonPayload, KNOWN_WORDS } from "../arbitraries.ts";
import { ANSWER_TIMEOUT_MS, HangError, isCodedClose, isSpecificCode, SKIPPED, verdictOf, within, type Verdict } from "../verdict.ts";
import type { FuzzNode, FuzzTarget, TargetLane } from "./types.ts";

/** Where a lane sits, and as whom. */
interface Seat { role: string; join(client: Client, sub: string): Promise<Room> }

const SEATS: readonly Seat[] = [
  { role: "operator", join: (client) => client.join("teleop", { roomId: "teleop-demo" }) },
  { role: "supervisor", join: (client) => client.join("teleop", { roomId: "teleop-demo" }) },
  { role: "visitor", join: (client, sub) => client.joinById("expo-demo", { name: sub, avatar: "fox" }) },
  { role: "host", join: (client, sub) => client.joinById("expo-demo", { name: sub }) },
  { role: "host", join: (client) => client.joinOrCreate("session", { roomId: "fuzz-session" }) },
  { role: "visitor", join: (client) => client.joinOrCreate("lobby") },
];

/** How long a lane refused a seat waits before its next case tries again, ms. */
const SEAT_RETRY_MS = 500;

/** The code of a refused join: the SDK's `code`, or the "[4407 ROOM_FULL]" our messages lead with. */
function refusalCode(error: unknown): number | undefined {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (isSpecificCode(code)) return code as number;
  const match = /^\[(\d+) /.exec(String(message ?? ""));
  return match ? Number(match[1]) : undefined;
}

/** Probe correlation ids live far above what the fuzzer's envelopes use, so a fuzzed Ping cannot answer one. */
let probeIds = 2 ** 40;

class RoomLane<Input> implements TargetLane<Input> {
  private room?: Room;
  private problems: string[] = [];
  private readonly probes = new Map<number, () => void>();
  private leaving?: (code: number) => void;
  private opened = 0;

  constructor(private readonly node: FuzzNode, private readonly seat: Seat, private readonly send: (room: Room, input: Input) => void) {}

  async run(input: Input): Promise<Verdict> {
    const room = await this.open();
    if (!room) return SKIPPED; // the seat refused us with a coded error (a ban, a full room): nothing to judge here
    this.problems = [];
    const left = new Promise<number>((resolve) => { this.leaving = resolve; });
    try {
      this.send(room, input);
    } catch {
      return SKIPPED; // the client library could not encode it (a type name too long for its header): nothing reached the server
    }
    const probe = probeIds++;
    const pong = new Promise<void>((resolve) => this.probes.set(probe, resolve));
    try {
      room.sendBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope({ correlationId: probe, ping: { clientTimeMs: Date.now() } }));
      const outcome = await within(Promise.race([pong.then(() => "pong" as const), left]), ANSWER_TIMEOUT_MS, `Pong after the case (${this.seat.role} in ${room.name})`);
      if (outcome !== "pong" && !isCodedClose(outcome)) this.problems.push(`session closed with uncoded close ${outcome}`);
      return verdictOf(this.problems);
    } catch (error) {
      if (error instanceof HangError) { this.drop(); return verdictOf([], error.message); }
      throw error;
    } finally {
      this.probes.delete(probe);
    }
  }

  private async open(): Promise<Room | undefined> {
    if (this.room) return this.room;
    const sub = `fuzz-${this.seat.role}-${process.pid}-${this.opened++}`;
    const client = new Client(this.node.httpUrl);
    client.auth.token = await this.node.token(this.seat.role, sub);
    let room: Room;
    try {
      room = await within(this.seat.join(client, sub), ANSWER_TIMEOUT_MS * 2, `join as ${this.seat.role}`);
    } catch (error) {
      // A coded refusal of the seat (the room full of the fuzzer's own dropped sessions,
      // whose reconnection seats it keeps a while; a ban): no case runs here for a moment.
      if (isSpecificCode(refusalCode(error))) {
        await new Promise((resolve) => setTimeout(resolve, SEAT_RETRY_MS));
        return undefined;
      }
      throw error;
    }
    room.onMessage(ENVELOPE_MESSAGE_TYPE, (bytes: Uint8Array) => this.received(bytes));
    room.onMessage("*", () => {});
    room.onError((code, message) => { if (!isSpecificCode(code)) this.problems.push(`room error ${code}: ${String(message).slice(0, 120)}`); });
    room.onLeave((code) => { if (this.room === room) this.room = undefined; this.leaving?.(code); });
    this.room = room;
    return room;
  }

  private received(bytes: Uint8Array) {
    let envelope;
    try {
      envelope = decodeEnvelope(bytes, 16 * 1024 * 1024);
    } catch (error) {
      this.problems.push(`server sent an undecodable envelope: ${(error as Error).message}`);
      return;
    }
    if (envelope.body === "error" && !isSpecificCode(envelope.error!.code)) {
      this.problems.push(`error envelope ${envelope.error!.code}: ${String(envelope.error!.message).slice(0, 120)}`);
    }
    if (envelope.body === "pong") this.probes.get(Number(envelope.correlationId))?.();
  }

  private drop() {
    const room = this.room;
    this.room = undefined;
    try { room?.connection.close(); } catch { /* already gone */ }
  }

  async close() {
    const room = this.room;
    this.room = undefined;
    await room?.leave().catch(() => {});
  }
}

function roomTarget<Input>(name: string, arbitrary: fc.Arbitrary<Input>, describe: (input: Input) => string,
  send: (room: Room, input: Input) => void): FuzzTarget<Input> {
  return {
    name,
    arbitrary,
    describe,
    lanes: SEATS.length,
    async open(node, lane) { return new RoomLane(node, SEATS[lane % SEATS.length], send); },
  };
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex").slice(0, 400);

export const roomEnvelope = roomTarget("room-envelope", envelopeBytes(), hex,
  (room, bytes) => room.sendBytes(ENVELOPE_MESSAGE_TYPE, bytes));

const messageTypes = fc.oneof(fc.constantFrom("chat", "filter", "move", "pb", "ping", "*", "__proto__", ...KNOWN_WORDS), fc.string({ maxLength: 16 }), fc.integer());
export const roomMessage = roomTarget("room-message", fc.tuple(messageTypes, jsonPayload(["text", "to", "channel", "type", "x", "y", "roomName"])),
  (input) => JSON.stringify(input).slice(0, 400),
  (room, [type, payload]) => room.send(type as string, payload));

export const roomRaw = roomTarget("room-raw", fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 256 }),
  fc.tuple(fc.integer({ min: 0, max: 30 }), fc.uint8Array({ maxLength: 64 })).map(([protocol, rest]) => Uint8Array.from([protocol, ...rest]))),
hex, (room, bytes) => room.connection.send(bytes));
