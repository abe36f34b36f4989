/**
 * The matchmaker's part in a zone handoff, between zone rooms that may run on different
 * nodes of the region: the old zone reserves the visitor a seat in the next zone's room,
 * carrying its state signed (the next zone believes only what verifies: the option
 * travels through the client), and the next zone tells the old one of the arrival
 * before it welcomes the visitor (ZoneLink's HandoffState.Arrived).
 *
 * @example
 *   const reservation = await reserveZoneSeat("hall--east", payload, client.auth); // the old zone
 *   const payload = verifiedHandoff(options.handoff, this.roomId, subject);          // the next zone, joining
 *   await announceArrival(payload.fromRoomId, payload.visitorId, logger);
 */
import { ServerError, matchMaker } from "@colyseus/core";
import { ErrorCode } from "../../proto/index.ts";
import type { Logger } from "../../server/observability/logging.ts";
import { sign, verify } from "./signing.ts";
import type { HandoffPayload } from "./model.ts";
import type { ExpoRoom } from "./ExpoRoom.ts";

/** The signing purpose of a handoff (signing.ts). */
export const HANDOFF = "expo-handoff";
/** A handoff's signed payload is good for this long: the client joins the next zone within it, ms. */
const HANDOFF_TTL_MS = 30_000;
/** How long a zone waits for the zone a visitor came from to take note of its arrival, ms. */
const ARRIVAL_NOTICE_TIMEOUT_MS = 1000;

/** Reserves a seat in zone room `roomId` for a client with `auth`, carrying `payload` signed. UNKNOWN_ROOM when that room is not open. */
export async function reserveZoneSeat(roomId: string, payload: HandoffPayload, auth: unknown): Promise<unknown> {
  const listing = await matchMaker.driver.findOne({ roomId });
  if (!listing) throw new ServerError(ErrorCode.UNKNOWN_ROOM, `zone room "${roomId}" is not open`);
  return matchMaker.reserveSeatFor(listing as any, { handoff: sign(HANDOFF, payload, HANDOFF_TTL_MS) }, auth as any);
}

/**
 * The handoff a join carries, when it verifies for this room and this token's subject.
 * @throws ServerError FORBIDDEN for a forged, expired or misdirected one.
 */
export function verifiedHandoff(signed: unknown, roomId: string, subject: string): HandoffPayload {
  const payload = verify<HandoffPayload>(HANDOFF, signed);
  if (!payload || payload.roomId !== roomId || payload.subject !== subject) {
    throw new ServerError(ErrorCode.FORBIDDEN, "zone handoff not valid here (forged, expired or for another room)");
  }
  return payload;
}

/** Tells zone room `roomId` that visitor `visitorId`, handed from it, arrived; never rejects (a zone gone or slow is logged). */
export async function announceArrival(roomId: string, visitorId: number, logger: Pick<Logger, "warn">): Promise<void> {
  try {
    await matchMaker.remoteRoomCall<ExpoRoom>(roomId, "zoneArrival", [visitorId], ARRIVAL_NOTICE_TIMEOUT_MS);
  } catch (error) {
    // Welcomed anyway: the old zone then sends frames until the client leaves it, which the client ignores.
    logger.warn({ err: error, visitorId, from: roomId }, `zone room ${roomId} did not take note of visitor ${visitorId}'s arrival here`);
  }
}
