/**
 * Watches a teleop room's devices for the console: joins it with the page's token (the
 * room admits operators, supervisors, hosts and visitors; an admin token is refused by
 * the room), keeps each device's newest DeviceProfile and LeaseState (the SDK's
 * deviceSnapshot) and re-renders when one changes. Raising an e-stop is the room's
 * request: the room decides by the token's role (operator, supervisor, admin).
 *
 * @example
 *   const watch = useTeleopWatch("teleop-demo", token, true);
 *   watch.devices.map((d) => d.lease?.holderRole);
 *   await watch.estop("excavator-1");   // or watch.estop() for every device
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { TsunagiClient, errorCodeName, type RoomSession } from "../../../../client-sdk/index.ts";

export interface DeviceView {
  deviceId: string;
  profile?: { deviceClass?: unknown; vendor?: string; model?: string };
  lease?: { leaseId?: string; holderSessionId?: string; holderRole?: string; expiresAtMs?: number; estopped?: boolean; endedLeaseId?: string; cause?: string; online?: boolean };
}

export interface TeleopWatch {
  phase: "idle" | "joining" | "joined" | "error";
  error?: string;
  sessionId?: string;
  devices: DeviceView[];
  estop(deviceId?: string): Promise<string>;
  reset(deviceId: string): Promise<string>;
}

const REQUEST_TIMEOUT_MS = 3000;

function describe(error: unknown): string {
  const code = (error as { code?: number })?.code;
  return `${code ? `${errorCodeName(code)}: ` : ""}${(error as Error)?.message ?? String(error)}`;
}

export function useTeleopWatch(roomId: string | undefined, token: string, enabled: boolean): TeleopWatch {
  const [state, setState] = useState<Omit<TeleopWatch, "estop" | "reset">>({ phase: "idle", devices: [] });
  const sessionRef = useRef<RoomSession | undefined>(undefined);
  useEffect(() => {
    if (!roomId || !enabled) { setState({ phase: "idle", devices: [] }); return; }
    let cancelled = false;
    const ids: string[] = [];
    setState({ phase: "joining", devices: [] });
    const client = new TsunagiClient({ url: location.origin, token });
    client.join("teleop", { roomId }).then((session) => {
      if (cancelled) { void session.leave(); return; }
      sessionRef.current = session;
      const publish = () => {
        if (cancelled) return;
        const devices = ids.map((deviceId): DeviceView => {
          const snapshot = session.deviceSnapshot(deviceId);
          return { deviceId, profile: snapshot?.profile ?? undefined, lease: snapshot?.lease ?? undefined } as DeviceView;
        });
        setState({ phase: "joined", sessionId: session.sessionId, devices });
      };
      session.onEnvelope((envelope) => {
        const deviceId = envelope.body === "leaseState" ? envelope.leaseState?.deviceId : envelope.body === "deviceProfile" ? envelope.deviceProfile?.deviceId : undefined;
        if (deviceId && !ids.includes(deviceId)) ids.push(deviceId);
        // the snapshot is updated before the handlers run; an e-stop notice is followed by LeaseStates
        if (deviceId || envelope.body === "estop" || envelope.body === "reset") queueMicrotask(publish);
      });
      session.on("leave", ({ error }) => { if (!cancelled) setState({ phase: "error", devices: [], error: error ? describe(error) : "the room closed" }); });
      publish();
    }, (error: unknown) => { if (!cancelled) setState({ phase: "error", devices: [], error: describe(error) }); });
    return () => {
      cancelled = true;
      void sessionRef.current?.leave();
      sessionRef.current = undefined;
    };
  }, [roomId, token, enabled]);

  const estop = async (deviceId?: string) => {
    const session = sessionRef.current;
    if (!session) return "not in the room";
    try {
      const reply = await session.request({ estop: deviceId ? { deviceId, reason: "e-stop from the console", raisedAtMs: Date.now() } : { all: true, reason: "e-stop of every device from the console", raisedAtMs: Date.now() } }, REQUEST_TIMEOUT_MS, { notice: true });
      return `E-stop raised${deviceId ? ` on ${deviceId}` : " on every device"} by ${reply.estop?.raisedBy || "you"}.`;
    } catch (error) {
      return `E-stop refused: ${describe(error)}`;
    }
  };
  const reset = async (deviceId: string) => {
    const session = sessionRef.current;
    if (!session) return "not in the room";
    try {
      await session.request({ reset: { deviceId, reason: "reset from the console" } }, REQUEST_TIMEOUT_MS, { notice: true });
      return `E-stop of ${deviceId} reset.`;
    } catch (error) {
      return `Reset refused: ${describe(error)}`;
    }
  };
  return { ...state, estop, reset };
}
