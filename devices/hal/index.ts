/**
 * The hardware abstraction layer, in the spirit of OpenEL: components with properties,
 * a lifecycle and observers; actuators and sensors; and the Hal registry the adapter
 * drives (initAll, zeroMotion, finalizeAll).
 */
export { ComponentState, actuatorModes } from "./types.ts";
export type { ActuatorMode, Clock, ComponentKind, ComponentLimits, ComponentOptions, ComponentProperties, TimedValue } from "./types.ts";
export { HalError, HalStateError, UnsupportedModeError, toHalError } from "./errors.ts";
export type { HalErrorCode } from "./errors.ts";
export type { HalEvent, HalEventMap, HalObserver } from "./events.ts";
export { ObserverSet, DEFAULT_MAX_OBSERVERS } from "./ObserverSet.ts";
export { HalComponent } from "./HalComponent.ts";
export { HalActuator } from "./HalActuator.ts";
export type { ActuatorModes } from "./HalActuator.ts";
export { HalSensor } from "./HalSensor.ts";
export { Hal } from "./Hal.ts";
export type { ComponentFailure, FinalizeReport, ZeroMotionReport } from "./Hal.ts";
