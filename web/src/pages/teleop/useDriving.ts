/**
 * The operator's hands on the page: which keys are held (anywhere on the page but in a
 * text field), the Space bar as the e-stop, and the gamepad (its dead-man and e-stop
 * buttons). Gives the cockpit `setpoint(profile)`, read at every command tick.
 *
 * Everything held is forgotten when the window loses focus or the tab is hidden, so a
 * key released elsewhere cannot keep the machine moving.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { gamepadWantsEStop, type DeviceProfile } from "../../../../client-sdk/index.ts";
import { buttonHeld, deadmanHeld, drivingCodes, firstPad, keyTable, keyboardSetpoint, padPlan, padSetpoint, typingIn } from "./driveInput.ts";

export interface Driving {
  /** The keys held now (codes), for the page. */
  held: ReadonlySet<string>;
  deadman: boolean;
  /** The connected gamepad's id, if any, and whether its dead-man button is held. */
  pad?: { id: string; deadman: boolean };
  /**
   * The setpoint of the hands now, under lease `leaseId`: empty (neutral) without a
   * dead-man, and under a lease new since the last tick, empty until the dead-man is let
   * go and pressed again (one held from before a grant, or through an e-stop, starts nothing).
   */
  setpoint(profile: DeviceProfile, leaseId: string): Record<string, number>;
}

export function useDriving(profile: DeviceProfile | undefined, options: { enabled: boolean; onEStop: () => void }): Driving {
  const heldRef = useRef(new Set<string>());
  /** Set when a lease is new while a dead-man is held; cleared once neither dead-man (key nor pad button) is held. */
  const staleRef = useRef(false);
  const leaseRef = useRef("");
  const [held, setHeld] = useState<ReadonlySet<string>>(new Set());
  const [pad, setPad] = useState<Driving["pad"]>();
  const onEStop = useRef(options.onEStop);
  onEStop.current = options.onEStop;

  useEffect(() => {
    if (!options.enabled) return;
    const codes = drivingCodes(keyTable(profile));
    const show = () => setHeld(new Set(heldRef.current));
    const clear = () => { heldRef.current.clear(); staleRef.current = false; show(); };
    const down = (event: KeyboardEvent) => {
      if (typingIn(event.target)) return;
      if (event.code === "Space") {
        event.preventDefault(); // not a button's click, not a scroll: the e-stop
        if (!event.repeat) onEStop.current();
        return;
      }
      if (!codes.has(event.code)) return;
      if (event.code.startsWith("Arrow")) event.preventDefault();
      if (!heldRef.current.has(event.code)) { heldRef.current.add(event.code); show(); }
    };
    const up = (event: KeyboardEvent) => {
      if (event.code === "Space" && !typingIn(event.target)) event.preventDefault();
      if (heldRef.current.delete(event.code)) show();
      if (!deadmanHeld(heldRef.current) && !buttonHeld(firstPad(), profile ? padPlan(profile).deadmanButton : 0)) staleRef.current = false;
    };
    const hidden = () => { if (document.hidden) clear(); };
    addEventListener("keydown", down, true);
    addEventListener("keyup", up, true);
    addEventListener("blur", clear);
    document.addEventListener("visibilitychange", hidden);
    return () => {
      removeEventListener("keydown", down, true);
      removeEventListener("keyup", up, true);
      removeEventListener("blur", clear);
      document.removeEventListener("visibilitychange", hidden);
      clear();
    };
  }, [profile, options.enabled]);

  // The pad: polled for its e-stop button (acting on the press) and for the page's status.
  useEffect(() => {
    if (!options.enabled || !profile || typeof navigator.getGamepads !== "function") return;
    const plan = padPlan(profile);
    let wasPressed = false;
    const timer = setInterval(() => {
      const now = firstPad();
      const pressed = gamepadWantsEStop(now, plan.mapping);
      if (pressed && !wasPressed) onEStop.current();
      wasPressed = pressed;
      if (staleRef.current && !buttonHeld(now, plan.deadmanButton) && !deadmanHeld(heldRef.current)) staleRef.current = false;
      setPad((old) => {
        const next = now ? { id: now.id, deadman: buttonHeld(now, plan.deadmanButton) } : undefined;
        return old?.id === next?.id && old?.deadman === next?.deadman ? old : next;
      });
    }, 30);
    return () => clearInterval(timer);
  }, [profile, options.enabled]);

  return {
    held,
    deadman: deadmanHeld(held),
    pad,
    setpoint(current, leaseId) {
      if (leaseId !== leaseRef.current) {
        leaseRef.current = leaseId;
        staleRef.current = deadmanHeld(heldRef.current) || buttonHeld(firstPad(), padPlan(current).deadmanButton);
      }
      if (!options.enabled || staleRef.current) return {};
      const fromPad = padSetpoint(current, padPlan(current), firstPad());
      if (Object.values(fromPad).some((value) => value !== 0)) return fromPad;
      return keyboardSetpoint(keyTable(current), heldRef.current);
    },
  };
}
