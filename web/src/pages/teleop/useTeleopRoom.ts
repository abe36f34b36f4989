/**
 * Joins the teleop room with the page's token and learns its devices from the room's
 * greeting (a LeaseState, and a DeviceProfile when the device is online, per device).
 * Leaves the room when the page goes.
 *
 * @example
 *   const room = useTeleopRoom("teleop-demo", token);
 *   if (room.phase === "joined") room.devices;   // ["excavator-1", "drone-1"]
 */
import { useEffect, useState } from "preact/hooks";
import { ErrorCode, TsunagiClient, errorCodeName, type RoomSession } from "../../../../client-sdk/index.ts";

export type TeleopRoomState =
  | { phase: "joining" }
  | { phase: "joined"; session: RoomSession; devices: string[] }
  | { phase: "error"; title: string; detail: string };

/** A join or session error as a person reads it. */
export function describeFailure(error: unknown, roomId: string): { title: string; detail: string } {
  const code = (error as { code?: number })?.code;
  const message = (error as Error)?.message ?? String(error);
  switch (code) {
    case ErrorCode.UNKNOWN_ROOM:
    case ErrorCode.MATCHMAKE_INVALID_ROOM_ID:
      return { title: `No teleop room “${roomId}”`, detail: "Check the address: the room is not open on this cluster." };
    case ErrorCode.FORBIDDEN:
    case ErrorCode.AUTH_FAILED:
      return { title: "Not allowed", detail: `Your token does not let you into room “${roomId}” (${message}).` };
    case ErrorCode.REGION_UNAVAILABLE:
    case ErrorCode.NODE_DRAINING:
      return { title: "Connection lost", detail: `${message}. Reload the page to join again.` };
    default:
      return { title: "Could not join the room", detail: `${code ? `${errorCodeName(code)}: ` : ""}${message}` };
  }
}

export function useTeleopRoom(roomId: string, token: string): TeleopRoomState {
  const [state, setState] = useState<TeleopRoomState>({ phase: "joining" });
  useEffect(() => {
    let cancelled = false;
    let session: RoomSession | undefined;
    const client = new TsunagiClient({ url: location.origin, token });
    client.join("teleop", { roomId }).then((joined) => {
      if (cancelled) { void joined.leave(); return; }
      session = joined;
      const devices: string[] = [];
      const seen = (deviceId: string) => {
        if (!deviceId || devices.includes(deviceId)) return;
        devices.push(deviceId);
        setState({ phase: "joined", session: joined, devices: [...devices] });
      };
      joined.onEnvelope((envelope) => {
        if (envelope.body === "leaseState") seen(envelope.leaseState?.deviceId ?? "");
        else if (envelope.body === "deviceProfile") seen(envelope.deviceProfile?.deviceId ?? "");
      });
      joined.on("leave", ({ error }) => {
        if (!cancelled) setState({ phase: "error", ...describeFailure(error ?? new Error("the session ended"), roomId) });
      });
      setState({ phase: "joined", session: joined, devices: [...devices] });
    }, (error: unknown) => {
      if (!cancelled) setState({ phase: "error", ...describeFailure(error, roomId) });
    });
    return () => {
      cancelled = true;
      void session?.leave();
    };
  }, [roomId, token]);
  return state;
}
