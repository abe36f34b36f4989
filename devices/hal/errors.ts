/**
 * The HAL's errors: one coded class and two subclasses for the misuses callers most
 * often need to tell apart. The adapter maps `code` onto wire error codes, so codes are
 * stable strings; add new ones rather than reusing old ones with a new meaning.
 */
import type { ActuatorMode, ComponentState } from "./types.ts";

export type HalErrorCode =
  /** The operation is not allowed in the component's lifecycle state (see HalStateError). */
  | "INVALID_STATE"
  /** The actuator does not support that control or read mode (see UnsupportedModeError). */
  | "UNSUPPORTED_MODE"
  /** A value that is not a finite number. */
  | "INVALID_VALUE"
  /** The driver failed to initialise; the component is now in Fault. */
  | "INIT_FAILED"
  /** The driver failed to shut down cleanly; the component is Finalized regardless. */
  | "FINALIZE_FAILED"
  /** The driver failed to apply a command; the component is now in Fault. */
  | "COMMAND_FAILED"
  /** The driver failed to take a reading; the component is now in Fault. */
  | "READ_FAILED"
  /** The device understood a command and refused it (wrong phase, link down, battery). */
  | "COMMAND_REFUSED"
  /** Hal.zeroMotion() could not stop a component. */
  | "STOP_FAILED"
  /** An observer threw; the component and the other observers carried on. */
  | "OBSERVER_FAILED"
  /** A component already holds as many observers as it accepts. */
  | "TOO_MANY_OBSERVERS"
  /** A Hal already holds as many components as it accepts. */
  | "TOO_MANY_COMPONENTS"
  | "UNKNOWN_COMPONENT"
  | "DUPLICATE_COMPONENT"
  /** A component exists under that id but is not of the kind asked for. */
  | "WRONG_KIND"
  /** A simulation step threw inside the real-time loop. */
  | "STEP_FAILED";

export class HalError extends Error {
  readonly code: HalErrorCode;
  /** The component concerned, when there is one. */
  readonly componentId: string | undefined;

  constructor(code: HalErrorCode, message: string, options: { componentId?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "HalError";
    this.code = code;
    this.componentId = options.componentId;
  }
}

/** Thrown when a component is used outside the state an operation needs (usually Ready). */
export class HalStateError extends HalError {
  /** The state the component was in. */
  readonly state: ComponentState;
  /** What the caller tried: "setValue", "init", … */
  readonly operation: string;

  constructor(componentId: string, operation: string, state: ComponentState, allowed: readonly ComponentState[]) {
    super("INVALID_STATE", `${componentId}: ${operation}() needs state ${allowed.join(" or ")}, but the component is ${state}`, { componentId });
    this.name = "HalStateError";
    this.state = state;
    this.operation = operation;
  }
}

/** Thrown when an actuator is asked for a mode it does not support. */
export class UnsupportedModeError extends HalError {
  readonly mode: string;
  readonly supported: readonly ActuatorMode[];

  constructor(componentId: string, mode: string, supported: readonly ActuatorMode[], purpose: "command" | "read") {
    super("UNSUPPORTED_MODE", `${componentId}: cannot ${purpose} mode "${mode}"; supported: ${supported.join(", ") || "none"}`, { componentId });
    this.name = "UnsupportedModeError";
    this.mode = mode;
    this.supported = supported;
  }
}

/**
 * Wraps anything thrown into a HalError of `code`, with the original as `cause`. A
 * HalError that already carries `code` is returned as it is, so wrapping twice is harmless.
 */
export function toHalError(error: unknown, code: HalErrorCode, message: string, componentId?: string): HalError {
  if (error instanceof HalError && error.code === code) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new HalError(code, `${message}: ${detail}`, { componentId, cause: error });
}
