/**
 * What becomes of an input reaching a room (RoomMover.intercept) while the room moves,
 * and while its node cannot confirm it still owns it:
 * - live: applied, unless the node is fenced off (below);
 * - frozen (a handoff's Freeze): queued, in arrival order, and carried to the new home;
 *   an e-stop is also applied here at once;
 * - moved away, or a copy dropped: not applied here (counted), the new home has it.
 *
 * @example
 *   if (interceptEnvelope(mover.migration, host, roomId, client, bytes)) return; // queued, dropped or refused
 */
import type { Client } from "@colyseus/core";
import { ErrorCode, decodeEnvelope, decodeStopEnvelope } from "../../proto/index.ts";
import { nodeContext } from "../../server/context.ts";
import type { RoomMigration } from "./MigratableRoom.ts";
import type { MoverHost } from "./RoomMover.ts";

type InputHost = Pick<MoverHost, "deliverEnvelope" | "listed" | "refuse">;

/** True when the envelope was queued or dropped by a move, or refused because this node may no longer own the room; not to be applied now. */
export function interceptEnvelope(migration: RoomMigration, host: InputHost, roomId: string, client: Client, bytes: Uint8Array): boolean {
  switch (migration.phase) {
    case "live": return refuseIfUnowned(host, roomId, client, bytes);
    case "frozen":
      // An e-stop skips every queue: applied here at once (the devices stop), and queued
      // too, in its place among the session's inputs, so the new home latches it even if
      // it came after the snapshot. Applied out of turn, its number is not taken here
      // (the inputs queued before it stay new); latching twice is latching once.
      if (decodeStopEnvelope(bytes, nodeContext().config.limits.maxFrameBytes)?.body === "estop") host.deliverEnvelope(client, bytes, { outOfTurn: true });
      migration.enqueue({ sessionId: client.sessionId, kind: "envelope", bytes: Buffer.from(bytes).toString("base64") });
      return true;
    default:
      nodeContext().metrics.rooms.inputsAfterHandoff++;
      return true;
  }
}

/** Like interceptEnvelope(), for a Colyseus message. */
export function interceptMessage(migration: RoomMigration, host: InputHost, roomId: string, client: Client, type: string, message: unknown): boolean {
  switch (migration.phase) {
    case "live": return refuseIfUnowned(host, roomId, client);
    case "frozen":
      migration.enqueue({ sessionId: client.sessionId, kind: "message", type, message });
      return true;
    default:
      nodeContext().metrics.rooms.inputsAfterHandoff++;
      return true;
  }
}

/**
 * A partition: this node cannot confirm its claims (its etcd lease), so a quorum it
 * cannot reach may have given the room to another node. It takes no inputs until it
 * can (NOT_ROOM_OWNER), so there are never two live copies taking them: inputs as they
 * arrive, and inputs a move queued and the room applies later (a handoff rolled back
 * behind a partition thaws its queue here). An e-stop is still applied: stopping is
 * always safe. True when `client`'s input was refused.
 */
export function refuseIfUnowned(host: Pick<InputHost, "listed" | "refuse">, roomId: string, client: Client, bytes?: Uint8Array): boolean {
  const context = nodeContext();
  if (context.ownsItsRooms() || !host.listed()) return false;
  if (bytes && decodeStopEnvelope(bytes, context.config.limits.maxFrameBytes)?.body === "estop") return false;
  // A request is answered (its reply is this refusal); anything else is told once a second.
  let correlationId = 0;
  if (bytes) { try { correlationId = Number(decodeEnvelope(bytes, context.config.limits.maxFrameBytes).correlationId) || 0; } catch { /* refused all the same */ } }
  host.refuse(client, ErrorCode.NOT_ROOM_OWNER, `this node cannot confirm it still holds room ${roomId} (its cluster store is out of reach): inputs are refused until it can`, correlationId);
  return true;
}
