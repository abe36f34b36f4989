/**
 * The shapes a node accepts on the cluster's handoff routes. Only nodes of the cluster
 * can call them (their credential is checked first), but a peer of another build or a
 * bug must meet a clear refusal, not a half-restored room: every field is checked
 * before anything is opened.
 *
 * @example
 *   const snapshot = checkSnapshot(body.snapshot); // throws ServerError(WRONG_TYPE) naming the problem
 */
import { ServerError } from "@colyseus/core";
import { z } from "zod";
import { ErrorCode } from "../../proto/index.ts";
import { FULL_ROOM_ID_PATTERN, ROOM_ID_PATTERN, roomIdOf } from "../../proto/ids.ts";
import { HANDOFF_REASONS, MAX_SEAT_SECONDS, HandoffState, type HandoffRecord, type QueuedInput, type RoomSnapshot } from "./types.ts";

/** Sessions one snapshot may carry: above any room's seat count. */
const MAX_SESSIONS = 50_000;
/** Inputs one snapshot or Switch may carry (RoomMigration's queue bound). */
const MAX_QUEUED = 20_000;
const HANDOFF_ID = /^[A-Za-z0-9-]{8,64}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** A fencing token; empty for a room that holds no claim (a lobby). */
const TOKEN = /^\d{0,30}$/;

const nodeRef = z.object({ regionId: z.string().max(64), nodeId: z.string().max(128) });
const record = z.object({
  id: z.string().regex(HANDOFF_ID),
  roomId: z.string().regex(FULL_ROOM_ID_PATTERN),
  reason: z.enum(HANDOFF_REASONS as [string, ...string[]]),
  from: nodeRef,
  to: nodeRef,
  transitions: z.array(z.object({ state: z.enum(HandoffState), at: z.number(), ms: z.number() })).max(16),
  outcome: z.enum([HandoffState.Complete, HandoffState.Aborted]).optional(),
  error: z.string().max(2000).optional(),
  sessions: z.number().int().min(0),
  carriedInputs: z.number().int().min(0),
  target: z.object({ openMs: z.number(), restoreMs: z.number(), seatsMs: z.number() }).optional(),
  arrived: z.object({ arrived: z.number().int().min(0), expected: z.number().int().min(0) }).optional(),
  failover: z.object({ snapshotTakenAt: z.number(), detectedAt: z.number() }).optional(),
});
const queuedInput = z.union([
  z.object({ sessionId: z.string().regex(SESSION_ID), kind: z.literal("envelope"), bytes: z.string().max(16 * 1024 * 1024) }),
  z.object({ sessionId: z.string().regex(SESSION_ID), kind: z.literal("message"), type: z.string().max(64), message: z.unknown() }),
]);
const snapshot = z.object({
  version: z.literal(1),
  roomName: z.string().regex(ROOM_ID_PATTERN),
  roomId: z.string().regex(FULL_ROOM_ID_PATTERN),
  name: z.string().regex(ROOM_ID_PATTERN),
  createdAt: z.number(),
  maxClients: z.number().int().min(0).nullable(),
  token: z.string().regex(TOKEN),
  takenAt: z.number(),
  options: z.record(z.string(), z.unknown()),
  state: z.unknown(),
  sessions: z.array(z.object({
    sessionId: z.string().regex(SESSION_ID),
    auth: z.unknown(),
    inputSeq: z.number().int().min(0).max(0xffff_ffff),
    followsHandoff: z.boolean(),
    data: z.unknown(),
  })).max(MAX_SESSIONS),
  queued: z.array(queuedInput).max(MAX_QUEUED),
  history: z.array(record).max(64),
});

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 5).map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);
  throw new ServerError(ErrorCode.WRONG_TYPE, `${what} is not valid: ${problems.join("; ")}`);
}

export function checkHandoffId(value: unknown): asserts value is string {
  if (typeof value !== "string" || !HANDOFF_ID.test(value)) throw new ServerError(ErrorCode.WRONG_TYPE, "handoffId must be the handoff's id");
}

export function checkSeatSeconds(value: unknown): asserts value is number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_SEAT_SECONDS) throw new ServerError(ErrorCode.WRONG_TYPE, `seatSeconds must be an integer of 1..${MAX_SEAT_SECONDS}`);
}

export function checkSnapshot(value: unknown): RoomSnapshot {
  const checked = parse(snapshot, value, "the snapshot") as RoomSnapshot;
  if (roomIdOf(checked.roomName, checked.name) !== checked.roomId) throw new ServerError(ErrorCode.WRONG_TYPE, `the snapshot's roomId ${checked.roomId} is not its type and name`);
  return checked;
}

export function checkQueued(value: unknown): QueuedInput[] {
  return parse(z.array(queuedInput).max(MAX_QUEUED), value ?? [], "the queued inputs") as QueuedInput[];
}

export function checkRecord(value: unknown): HandoffRecord {
  return parse(record, value, "the handoff record") as HandoffRecord;
}
