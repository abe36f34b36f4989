/**
 * What the operator's hands command, read at every tick of the command loop: pure
 * functions over the keys held and the gamepad, so the dead-man rule lives in one place.
 *
 * Safety: no dead-man, no motion. Without the dead-man key (Shift) held, or the pad's
 * dead-man button, the setpoint is empty, which OperatorControls sends as neutral
 * (velocity and torque axes 0). Position axes are never driven from here.
 *
 * @example
 *   const keys = keyTable(profile);        // [{ axis: "boom", plus: "KeyW", minus: "KeyS", ... }]
 *   driveSetpoint(profile, held, pad);     // {} without the dead-man; { boom: 0.25 } with Shift + W
 */
import { defaultGamepadMapping, gamepadToAxes, tsunagi, type DeviceProfile, type GamepadLike, type GamepadMapping } from "../../../../client-sdk/index.ts";

const AxisMode = tsunagi.v1.AxisMode;

/** The keyboard's dead-man keys: either Shift. */
export const DEADMAN_CODES = ["ShiftLeft", "ShiftRight"] as const;
/** Share of the axis's limit a held key commands. */
export const KEY_SPEED = 0.5;

/** Key pairs offered to the profile's commandable axes, in profile order: (+, −). */
const KEY_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ["KeyW", "KeyS"], ["KeyD", "KeyA"], ["ArrowUp", "ArrowDown"], ["ArrowRight", "ArrowLeft"],
  ["KeyI", "KeyK"], ["KeyL", "KeyJ"], ["KeyR", "KeyF"], ["KeyT", "KeyG"],
];

export interface KeyBinding {
  axis: string;
  plus: string;
  minus: string;
  /** The value a held key commands, in the axis's rate or effort unit. */
  magnitude: number;
  unit: string;
}

/** Whether the axis takes keyboard and gamepad commands (velocity or torque). */
export function drivable(axis: tsunagi.v1.IAxisProfile): boolean {
  return axis.mode === AxisMode.AXIS_MODE_VELOCITY || axis.mode === AxisMode.AXIS_MODE_TORQUE;
}

/** One key pair per commandable axis of the profile, as many as there are pairs. */
export function keyTable(profile: DeviceProfile | undefined): KeyBinding[] {
  const table: KeyBinding[] = [];
  for (const axis of profile?.axes ?? []) {
    if (!drivable(axis) || table.length >= KEY_PAIRS.length) continue;
    const [plus, minus] = KEY_PAIRS[table.length]!;
    const torque = axis.mode === AxisMode.AXIS_MODE_TORQUE;
    const limit = torque ? Number(axis.maxEffort ?? 0) : Number(axis.maxRate ?? 0);
    table.push({ axis: axis.name ?? "", plus, minus, magnitude: limit * KEY_SPEED, unit: (torque ? axis.effortUnit : axis.rateUnit) || "" });
  }
  return table;
}

/** Every key the cockpit listens to for driving. */
export function drivingCodes(table: KeyBinding[]): Set<string> {
  return new Set([...DEADMAN_CODES, ...table.flatMap((binding) => [binding.plus, binding.minus])]);
}

export function deadmanHeld(held: ReadonlySet<string>): boolean {
  return DEADMAN_CODES.some((code) => held.has(code));
}

/** The setpoint of the keys held: empty (all neutral) unless the dead-man key is held. */
export function keyboardSetpoint(table: KeyBinding[], held: ReadonlySet<string>): Record<string, number> {
  if (!deadmanHeld(held)) return {};
  const values: Record<string, number> = {};
  for (const binding of table) {
    const direction = (held.has(binding.plus) ? 1 : 0) - (held.has(binding.minus) ? 1 : 0);
    if (direction !== 0) values[binding.axis] = direction * binding.magnitude;
  }
  return values;
}

/** Standard-layout button names, for the page. */
const BUTTON_NAMES: Record<number, string> = { 0: "A / cross", 1: "B / circle", 2: "X / square", 3: "Y / triangle", 4: "left bumper", 5: "right bumper", 8: "back / select" };

export interface PadPlan {
  mapping: GamepadMapping;
  /** The button that must be held for the pad to command anything. */
  deadmanButton: number;
  deadmanName: string;
  estopName: string;
}

/** The SDK's mapping for the device, and a dead-man button it leaves free (left bumper, else right, else A). */
export function padPlan(profile: DeviceProfile): PadPlan {
  const mapping = defaultGamepadMapping(profile);
  const used = new Set<number>([mapping.estopButton ?? 8]);
  for (const source of Object.values(mapping.axes)) {
    if ("trigger" in source) { used.add(source.trigger); if (source.reverse !== undefined) used.add(source.reverse); }
  }
  const deadmanButton = [4, 5, 0, 1].find((button) => !used.has(button)) ?? 0;
  return { mapping, deadmanButton, deadmanName: BUTTON_NAMES[deadmanButton] ?? `button ${deadmanButton}`, estopName: BUTTON_NAMES[mapping.estopButton ?? 8] ?? "back" };
}

export function buttonHeld(pad: GamepadLike | null | undefined, index: number): boolean {
  if (!pad || pad.connected === false) return false;
  const button = pad.buttons[index];
  return typeof button === "boolean" ? button : button?.pressed === true;
}

/** The pad's setpoint: the SDK's mapping while its dead-man button is held, else empty (neutral). */
export function padSetpoint(profile: DeviceProfile, plan: PadPlan, pad: GamepadLike | null | undefined): Record<string, number> {
  if (!buttonHeld(pad, plan.deadmanButton)) return {};
  return gamepadToAxes(pad, profile, plan.mapping);
}

/** The first connected gamepad, if the browser has the API and one is plugged in. */
export function firstPad(): Gamepad | null {
  if (typeof navigator.getGamepads !== "function") return null;
  return navigator.getGamepads().find((pad): pad is Gamepad => pad !== null && pad.connected) ?? null;
}

/** A key code as printed on the key. */
export function keyLabel(code: string): string {
  if (code.startsWith("Key")) return code.slice(3);
  return ({ ArrowUp: "↑", ArrowDown: "↓", ArrowLeft: "←", ArrowRight: "→", ShiftLeft: "Shift", ShiftRight: "Shift" } as Record<string, string>)[code] ?? code;
}

/** Whether the keyboard event comes from a place where the user types (no e-stop or driving keys there). */
export function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target instanceof HTMLTextAreaElement) return true;
  return target instanceof HTMLInputElement && !["button", "checkbox", "radio", "range", "submit", "reset"].includes(target.type);
}
