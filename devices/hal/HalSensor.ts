/**
 * A sensor (OpenEL's Sensor): read() gives a timed value `{ value, timestamp }` in the
 * component's unit, timestamped by the component's clock.
 *
 * @example
 *   const { value, timestamp } = battery.read();   // { value: 87.5, timestamp: 1718... }
 */
import { toHalError } from "./errors.ts";
import { HalComponent } from "./HalComponent.ts";
import { ComponentState, type TimedValue } from "./types.ts";

export abstract class HalSensor extends HalComponent {
  readonly kind = "sensor" as const;

  /** Takes a reading. Needs Ready; a driver failure puts the sensor in Fault and throws READ_FAILED. */
  read(): TimedValue {
    this.requireState("read", [ComponentState.Ready]);
    let value: number;
    try {
      value = this.sample();
    } catch (error) {
      const failure = toHalError(error, "READ_FAILED", `${this.id}: read failed`, this.id);
      this.enterFault(failure.message, failure);
      throw failure;
    }
    return { value, timestamp: this.clock() };
  }

  /** Samples the device, in `properties.unit`. */
  protected abstract sample(): number;
}
