/** The simulated drone's battery as a HAL sensor: state of charge, %. */
import { HalSensor } from "../../hal/HalSensor.ts";
import type { ComponentOptions } from "../../hal/types.ts";
import type { SimFlightController } from "./SimFlightController.ts";

export class BatterySensor extends HalSensor {
  /** Owns the battery model. */
  private readonly controller: SimFlightController;

  constructor(id: string, controller: SimFlightController, options: ComponentOptions = {}) {
    super(id, {
      name: "Battery",
      vendor: "Tsunagi",
      model: "sim-battery",
      description: "state of charge",
      unit: "%",
      limits: { min: 0, max: 100 },
    }, options);
    this.controller = controller;
  }

  protected override sample(): number {
    return this.controller.battery;
  }
}
