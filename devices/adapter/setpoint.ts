/**
 * How a checked setpoint reaches the device's Hal: every profile axis, the commanded
 * value or its safe value (velocity and torque 0; a position axis holds). Kept apart from
 * SafetyController, which decides whether a setpoint may be applied at all.
 */
import { tsunagi } from "../../proto/index.ts";
import type { SetpointEntry } from "../../proto/deviceProfile.ts";
import type { Hal } from "../hal/Hal.ts";

const AxisMode = tsunagi.v1.AxisMode;

/**
 * Applies each entry to its actuator. A velocity of 0 the device refuses goes through
 * stop() instead, which never refuses. Returns one "axis: why" per entry the device
 * refused (empty when it took them all); the caller zeroes motion on any.
 */
export function setHalSetpoint(hal: Hal, setpoint: readonly SetpointEntry[]): string[] {
  const failures: string[] = [];
  for (const entry of setpoint) {
    try {
      const actuator = hal.actuator(entry.name);
      switch (entry.mode) {
        case AxisMode.AXIS_MODE_VELOCITY: {
          const value = entry.value ?? 0;
          if (value !== 0) { actuator.setValue("velocity", value); break; }
          // A zero in a command is "no input": the device may take it as such (a drone taking
          // off climbs on). Should it refuse even that, stop() does it, which never refuses.
          try {
            actuator.setValue("velocity", 0);
          } catch (error) {
            if (!actuator.velocityCapable) throw error;
            actuator.stop();
          }
          break;
        }
        case AxisMode.AXIS_MODE_TORQUE:
          actuator.setValue("torque", entry.value ?? 0);
          break;
        case AxisMode.AXIS_MODE_POSITION:
          if (entry.value !== undefined) actuator.setValue("position", entry.value);
          break;
        default:
          break; // not commandable; the guard refused any value for it
      }
    } catch (error) {
      failures.push(`${entry.name}: ${(error as Error).message}`);
    }
  }
  return failures;
}
