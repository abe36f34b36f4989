/**
 * Gamepad → axis values, for OperatorControls. Pure functions over the browser's
 * Gamepad API object (or anything shaped like it), in the W3C "standard" layout:
 *
 *   axes[0] left stick X (right +)     axes[1] left stick Y (down +)
 *   axes[2] right stick X (right +)    axes[3] right stick Y (down +)
 *   buttons[4] left bumper   buttons[5] right bumper
 *   buttons[6] left trigger  buttons[7] right trigger (analog, 0..1)
 *   buttons[8] back / select buttons[9] start
 *
 * Default mappings (docs/operator-controls.md has the tables):
 * - Excavator, ISO control pattern (ISO 10968): left stick X swing, left stick Y arm,
 *   right stick Y boom, right stick X bucket; each trigger drives its track forward,
 *   its bumper held reverses it.
 * - Drone, mode 2: left stick Y climb, left stick X yaw, right stick Y forward, right
 *   stick X lateral.
 * - Anything else: the four sticks drive the first four velocity or torque axes, in
 *   profile order, stick up or right positive.
 *
 * A stick or trigger inside the deadzone (default 0.08) reads 0; beyond it the value is
 * rescaled so it still starts at 0 and reaches ±1 at full deflection, then multiplied by
 * the axis's max_rate (torque axes: max_effort). Position axes are never driven from a
 * gamepad: they are left out, so they hold. A missing or disconnected pad gives zeros.
 *
 * @example
 *   const controls = new OperatorControls(session, {
 *     deviceId: "excavator-1",
 *     // read at every tick of the command loop; undefined (no profile yet) keeps neutral
 *     input: () => controls.profile && gamepadToAxes(navigator.getGamepads()[0], controls.profile),
 *   });
 *   // in the UI loop: act on the press, not on every frame the button stays down
 *   const pressed = gamepadWantsEStop(navigator.getGamepads()[0]);
 *   if (pressed && !wasPressed) void controls.estop("gamepad e-stop");
 *   wasPressed = pressed;
 */
import { tsunagi } from "../proto/index.ts";
import type { AxisProfileLike } from "./OperatorControls.ts";
import { axisBounds } from "../proto/deviceProfile.ts";

/** A gamepad as the W3C Gamepad API describes it; only what the mapping reads. */
export interface GamepadLike {
  readonly axes: readonly number[];
  readonly buttons: readonly (boolean | { readonly pressed: boolean; readonly value?: number })[];
  /** False once the pad is unplugged; treated as all zeros. */
  readonly connected?: boolean;
}

/** Where one device axis takes its value from. */
export type GamepadSource =
  /** A stick axis, pad.axes[stick], in [-1, 1]; `invert` flips its sign (stick Y reads + when pulled back). */
  | { stick: number; invert?: boolean }
  /** An analog trigger, pad.buttons[trigger].value in [0, 1], negated while buttons[reverse] is held. */
  | { trigger: number; reverse?: number; invert?: boolean };

export interface GamepadMapping {
  /** Per device axis name, its source. Names the profile does not have are ignored. */
  axes: Readonly<Record<string, GamepadSource>>;
  /** Stick and trigger readings below this magnitude count as 0. Default 0.08. */
  deadzone: number;
  /** The button that asks for an e-stop (gamepadWantsEStop). Recommended: 8, back/select. */
  estopButton?: number;
}

/** Standard-layout indices (W3C Gamepad, "standard" mapping). */
export const StandardGamepad = Object.freeze({
  leftStickX: 0, leftStickY: 1, rightStickX: 2, rightStickY: 3,
  leftBumper: 4, rightBumper: 5, leftTrigger: 6, rightTrigger: 7,
  back: 8, start: 9, leftStickPress: 10, rightStickPress: 11,
});

export const DEFAULT_DEADZONE = 0.08;
export const DEFAULT_ESTOP_BUTTON = StandardGamepad.back;

const pad = StandardGamepad;

/** ISO control pattern for an excavator (sim-excavator's axis names). */
export const excavatorIsoMapping: Readonly<Record<string, GamepadSource>> = Object.freeze({
  // left stick: right swings right (clockwise, swing −); forward moves the arm out (arm +)
  swing: { stick: pad.leftStickX, invert: true },
  arm: { stick: pad.leftStickY, invert: true },
  // right stick: forward lowers the boom, back raises it (boom +); right dumps the bucket (+), left curls it
  boom: { stick: pad.rightStickY },
  bucket: { stick: pad.rightStickX },
  // tracks: trigger forward, bumper held reverses
  "left-track": { trigger: pad.leftTrigger, reverse: pad.leftBumper },
  "right-track": { trigger: pad.rightTrigger, reverse: pad.rightBumper },
});

/** Mode 2 for a multirotor (sim-drone's axis names; body frame: vx forward, vy left, vz up, yaw counter-clockwise). */
export const droneMode2Mapping: Readonly<Record<string, GamepadSource>> = Object.freeze({
  // left stick: forward climbs (vz +); right yaws clockwise (yaw-rate −)
  vz: { stick: pad.leftStickY, invert: true },
  "yaw-rate": { stick: pad.leftStickX, invert: true },
  // right stick: forward flies forward (vx +); right moves right (vy −)
  vx: { stick: pad.rightStickY, invert: true },
  vy: { stick: pad.rightStickX, invert: true },
});

/** Sticks in the order the generic mapping hands them out, up and right positive. */
const genericSticks: readonly GamepadSource[] = [
  { stick: pad.leftStickY, invert: true },
  { stick: pad.leftStickX },
  { stick: pad.rightStickY, invert: true },
  { stick: pad.rightStickX },
];

const drivable = (axis: AxisProfileLike) =>
  axis.mode === tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY || axis.mode === tsunagi.v1.AxisMode.AXIS_MODE_TORQUE;

/**
 * The standard mapping for a device: ISO pattern for an excavator, mode 2 for a drone
 * (by device class, or by axis names when the class is not set), otherwise the sticks
 * on the first four velocity or torque axes.
 */
export function defaultGamepadMapping(
  profile: tsunagi.v1.IDeviceProfile,
  options: { deadzone?: number; estopButton?: number } = {},
): GamepadMapping {
  const names = new Set((profile.axes ?? []).map((axis) => axis.name));
  const has = (table: Readonly<Record<string, GamepadSource>>) => Object.keys(table).every((name) => names.has(name));
  const deviceClass = profile.deviceClass ?? tsunagi.v1.DeviceClass.DEVICE_CLASS_UNSPECIFIED;
  let axes: Record<string, GamepadSource>;
  if (deviceClass === tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR || has(excavatorIsoMapping)) axes = { ...excavatorIsoMapping };
  else if (deviceClass === tsunagi.v1.DeviceClass.DEVICE_CLASS_DRONE || has(droneMode2Mapping)) axes = { ...droneMode2Mapping };
  else {
    axes = {};
    (profile.axes ?? []).filter(drivable).slice(0, genericSticks.length).forEach((axis, i) => { axes[axis.name ?? ""] = genericSticks[i]; });
  }
  const deadzone = options.deadzone ?? DEFAULT_DEADZONE;
  if (!(deadzone >= 0 && deadzone < 1)) throw new TypeError(`deadzone must be in [0, 1), got ${String(options.deadzone)}`);
  return { axes, deadzone, estopButton: options.estopButton ?? DEFAULT_ESTOP_BUTTON };
}

/** A reading with the deadzone applied and the rest rescaled to [-1, 1]. */
export function applyDeadzone(value: number, deadzone: number): number {
  if (!Number.isFinite(value)) return 0;
  const magnitude = Math.min(1, Math.abs(value));
  if (magnitude <= deadzone) return 0;
  return Math.sign(value) * ((magnitude - deadzone) / (1 - deadzone));
}

/** A button's analog value in [0, 1] (a boolean or `pressed` without a value reads 0 or 1). */
function buttonValue(button: GamepadLike["buttons"][number] | undefined): number {
  if (button === undefined || button === null) return 0;
  if (typeof button === "boolean") return button ? 1 : 0;
  if (typeof button.value === "number" && Number.isFinite(button.value)) return Math.min(1, Math.max(0, button.value));
  return button.pressed ? 1 : 0;
}

function buttonPressed(button: GamepadLike["buttons"][number] | undefined): boolean {
  if (button === undefined || button === null) return false;
  return typeof button === "boolean" ? button : button.pressed === true;
}

/** One source's reading in [-1, 1], deadzone applied. */
function read(gamepad: GamepadLike, source: GamepadSource, deadzone: number): number {
  let value: number;
  if ("stick" in source) {
    value = applyDeadzone(gamepad.axes[source.stick] ?? 0, deadzone);
  } else {
    value = applyDeadzone(buttonValue(gamepad.buttons[source.trigger]), deadzone);
    if (source.reverse !== undefined && buttonPressed(gamepad.buttons[source.reverse])) value = -value;
  }
  return (source.invert ? -value : value) + 0; // + 0 turns -0 into 0
}

/**
 * The gamepad's state as axis values by name, for OperatorControls.setAxes() or its
 * `input` option: each mapped velocity axis gets reading × max_rate (torque: ×
 * max_effort). Axes the profile lacks, and position axes, are left out. A null,
 * undefined or disconnected pad gives 0 on every mapped axis: losing the pad stops.
 */
export function gamepadToAxes(
  gamepad: GamepadLike | null | undefined,
  profile: tsunagi.v1.IDeviceProfile,
  mapping: GamepadMapping = defaultGamepadMapping(profile),
): Record<string, number> {
  const values: Record<string, number> = {};
  const usable = !!gamepad && gamepad.connected !== false;
  for (const axis of profile.axes ?? []) {
    const name = axis.name ?? "";
    const source = mapping.axes[name];
    if (!source || !drivable(axis)) continue;
    const [, high] = axisBounds(axis);
    values[name] = usable ? read(gamepad!, source, mapping.deadzone) * high : 0;
  }
  return values;
}

/**
 * Whether the mapping's e-stop button is pressed. Act on the press (the change from
 * not pressed), not on every frame it stays down. Without an e-stop button: false.
 */
export function gamepadWantsEStop(gamepad: GamepadLike | null | undefined, mapping: Pick<GamepadMapping, "estopButton"> = { estopButton: DEFAULT_ESTOP_BUTTON }): boolean {
  if (!gamepad || gamepad.connected === false || mapping.estopButton === undefined) return false;
  return buttonPressed(gamepad.buttons[mapping.estopButton]);
}
