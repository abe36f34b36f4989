/** Small HAL components whose drivers can be told to fail, for the HAL's own tests. */
import { HalActuator, HalSensor, type ActuatorMode, type Clock, type HalError, type HalEvent, type HalObserver } from "../../../../devices/hal/index.ts";

export interface TestActuatorOptions {
  modes?: ActuatorMode[];
  clock?: Clock;
}

/** An actuator that records commands; set a `fail*` field to make the next call throw. */
export class TestActuator extends HalActuator {
  /** Every applied command, in order. */
  readonly applied: { mode: ActuatorMode; value: number }[] = [];
  /** Last value applied per mode. */
  readonly values = new Map<ActuatorMode, number>();
  failInit = false;
  failApply = false;
  failStop = false;
  failFinalize = false;

  constructor(id: string, options: TestActuatorOptions = {}) {
    const modes = options.modes ?? ["velocity"];
    super(id, { name: id, vendor: "test", model: "test-actuator", unit: "rad", limits: { min: -1, max: 1, maxRate: 2 } },
      { command: modes, read: modes }, { clock: options.clock });
  }

  /** Exposes the protected fault path. */
  fail(reason: string): void {
    this.enterFault(reason);
  }

  protected override onInit(): void {
    if (this.failInit) throw new Error("bus not found");
  }

  protected override onFinalize(): void {
    if (this.failFinalize) throw new Error("brake did not engage");
  }

  protected override applyValue(mode: ActuatorMode, value: number): void {
    if (this.failApply) throw new Error("drive timeout");
    this.applied.push({ mode, value });
    this.values.set(mode, value);
  }

  protected override readValue(mode: ActuatorMode): number {
    return this.values.get(mode) ?? 0;
  }

  protected override applyStop(): void {
    if (this.failStop) throw new Error("stop not acknowledged");
    super.applyStop();
  }
}

export class TestSensor extends HalSensor {
  reading = 42;

  constructor(id: string, clock?: Clock) {
    super(id, { name: id, vendor: "test", model: "test-sensor", unit: "%", limits: { min: 0, max: 100 } }, { clock });
  }

  protected override sample(): number {
    return this.reading;
  }
}

/** An observer that records what it hears. */
export function recorder(): HalObserver & { events: HalEvent[]; errors: HalError[] } {
  const events: HalEvent[] = [];
  const errors: HalError[] = [];
  return { events, errors, onEvent: (event) => void events.push(event), onError: (error) => void errors.push(error) };
}

/** The error a function throws (fails the test if it does not throw). */
export function thrown(fn: () => unknown): HalError {
  try {
    fn();
  } catch (error) {
    return error as HalError;
  }
  throw new Error("expected the call to throw");
}
