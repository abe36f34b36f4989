/**
 * One device's controls for the cockpit: an OperatorControls on the room session, its
 * state for rendering (profile, lease, telemetry and its recent history, latency), the
 * lease, e-stop and reset actions, and the drive input read at every command tick.
 *
 * The fixed-rate loop runs for the roles that may drive; commands flow only while the
 * lease is ours, and carry what `driveInput` returns: neutral unless a dead-man is held.
 * Leaving the page (or switching device) disposes the controls: stop, then release.
 */
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  OperatorControls, type DeviceProfile, type LatencyStats, type LeaseState, type RoomSession, type Telemetry,
} from "../../../../client-sdk/index.ts";

/** Seconds of telemetry the chart shows. */
export const HISTORY_SECONDS = 30;

export interface Sample { atMs: number; values: number[] }

export interface CockpitState {
  profile?: DeviceProfile;
  lease?: LeaseState;
  telemetry?: Telemetry;
  holding: boolean;
  latency?: LatencyStats;
  /** Joint positions of the first two axes over the last HISTORY_SECONDS. */
  history: Sample[];
  /** The last refusal or room error, for the page's alert. */
  notice?: { kind: "error" | "info"; text: string };
  demoted?: string;
}

export interface Cockpit extends CockpitState {
  controls?: OperatorControls;
  acquire(): void;
  release(): void;
  preempt(): void;
  estop(): void;
  reset(): void;
}

const message = (error: unknown) => (error as Error)?.message ?? String(error);

export function useCockpit(session: RoomSession, deviceId: string, canDrive: boolean, driveInput: (profile: DeviceProfile, leaseId: string) => Record<string, number>): Cockpit {
  const [state, setState] = useState<CockpitState>({ holding: false, history: [] });
  const [controls, setControls] = useState<OperatorControls>();
  const inputRef = useRef(driveInput);
  inputRef.current = driveInput;

  useEffect(() => {
    const history: Sample[] = [];
    const made: OperatorControls = new OperatorControls(session, {
      deviceId,
      rateHz: 50,
      // Read at every tick: the dead-man rule is in driveInput; no profile yet, keep neutral.
      input: () => (made.profile ? inputRef.current(made.profile, made.lease?.leaseId ?? "") : {}),
      onListenerError: (error) => console.error("cockpit listener", error),
    });
    const refresh = (patch: Partial<CockpitState> = {}) => setState((old) => ({
      ...old, ...patch, profile: made.profile, lease: made.lease, telemetry: made.telemetry, holding: made.holding, history: [...history],
    }));
    const offs = [
      made.on("telemetry", (telemetry) => {
        const axes = (made.profile?.axes ?? []).slice(0, 2).map((axis) => axis.name);
        const values = axes.map((name) => telemetry.joints.find((joint) => joint.name === name)?.position ?? 0);
        const now = Date.now();
        history.push({ atMs: now, values });
        while (history.length && history[0]!.atMs < now - HISTORY_SECONDS * 1000) history.shift();
        refresh();
      }),
      made.on("lease", () => refresh()),
      made.on("profile", () => refresh()),
      made.on("estop", (estop) => refresh({ notice: { kind: "info", text: `E-stop raised${estop.reason ? `: ${estop.reason}` : ""}` } })),
      made.on("reset", () => refresh({ notice: { kind: "info", text: "E-stop reset. Take the lease again to drive." } })),
      made.on("demoted", (event) => refresh({ demoted: event.message ?? "Demoted: the link was too slow for this device's latency budget." })),
      made.on("error", (error) => refresh({ notice: { kind: "error", text: message(error) } })),
    ];
    if (canDrive) made.start();
    setControls(made);
    refresh();
    const timer = setInterval(() => setState((old) => ({ ...old, latency: made.latency() })), 500);
    return () => {
      clearInterval(timer);
      for (const off of offs) off();
      made.dispose();
      setControls(undefined);
      setState({ holding: false, history: [] });
    };
  }, [session, deviceId, canDrive]);

  const actions = useMemo(() => {
    const run = (what: string, action: () => Promise<unknown>, done?: string) => {
      if (!controls) return;
      action().then(
        () => setState((old) => ({ ...old, notice: done ? { kind: "info", text: done } : undefined, demoted: what === "acquire" ? undefined : old.demoted })),
        (error: unknown) => setState((old) => ({ ...old, notice: { kind: "error", text: `${what} refused: ${message(error)}` } })),
      );
    };
    return {
      acquire: () => run("acquire", () => controls!.acquire()),
      release: () => run("release", () => controls!.release()),
      preempt: () => run("take over", () => controls!.preempt()),
      estop: () => run("E-stop", () => controls!.estop("cockpit e-stop"), "E-stop raised: the machine is stopped and latched."),
      reset: () => run("reset", () => controls!.reset("cockpit reset"), "E-stop reset. Take the lease again to drive."),
    };
  }, [controls]);

  return { ...state, controls, ...actions };
}
