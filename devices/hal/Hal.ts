/**
 * The registry of one device's HAL components, and the operations that span them:
 * initialise all, finalise all, and zero all motion.
 *
 * `zeroMotion()` is what the adapter's watchdog and e-stop call, so it never throws:
 * it tries every velocity-capable actuator, including faulted ones, and reports each
 * failure to the Hal's observers (and in its return value) instead.
 *
 * The Hal's observers hear every component's events and errors, so the adapter
 * subscribes once rather than per component.
 *
 * @example
 *   const hal = new Hal();
 *   hal.add(new SimJoint("boom", ...));
 *   hal.addObserver({ onEvent: (e) => telemetry.push(e), onError: (e) => log.warn(e) });
 *   hal.initAll();
 *   hal.actuator("boom").setValue("velocity", 0.2);
 *   hal.zeroMotion();     // { stopped: ["boom"], skipped: [], failed: [] }
 *   hal.finalizeAll();
 */
import { HalError, toHalError } from "./errors.ts";
import type { HalEvent, HalObserver } from "./events.ts";
import { HalActuator } from "./HalActuator.ts";
import type { HalComponent } from "./HalComponent.ts";
import { HalSensor } from "./HalSensor.ts";
import { ObserverSet } from "./ObserverSet.ts";
import { ComponentState, type ComponentKind } from "./types.ts";

export interface ComponentFailure {
  componentId: string;
  error: HalError;
}

export interface ZeroMotionReport {
  /** Velocity-capable actuators now commanded to zero (including faulted ones that took the stop). */
  stopped: string[];
  /** Actuators not yet initialised or already finalised: neither can be moving, and neither takes commands. */
  skipped: string[];
  /** Actuators that could not be stopped; each was also reported to the Hal's observers. */
  failed: ComponentFailure[];
}

export interface FinalizeReport {
  finalized: string[];
  /** Components whose shutdown failed (they are Finalized regardless); each was reported to observers. */
  failed: ComponentFailure[];
}

/** Upper bound on components per Hal; a machine has tens of axes, not thousands. */
const MAX_COMPONENTS = 256;

export class Hal {
  /** Components by id, in registration order; finalizeAll walks it backwards. */
  private readonly components = new Map<string, HalComponent>();
  /** Observers of every component's events and errors, and of the Hal's own errors. */
  private readonly observers = new ObserverSet<HalEvent>("hal");
  /** Registered on each component to relay its events and errors to the Hal's observers. */
  private readonly relay: HalObserver = {
    onEvent: (event) => this.observers.notifyEvent(event),
    onError: (error) => this.observers.notifyError(error),
  };

  /** Registers a component and relays its events. Throws DUPLICATE_COMPONENT for a taken id. */
  add<C extends HalComponent>(component: C): C {
    if (this.components.has(component.id)) {
      throw new HalError("DUPLICATE_COMPONENT", `a component "${component.id}" is already registered`, { componentId: component.id });
    }
    if (this.components.size >= MAX_COMPONENTS) {
      throw new HalError("TOO_MANY_COMPONENTS", `a Hal holds at most ${MAX_COMPONENTS} components`, { componentId: component.id });
    }
    component.addObserver(this.relay);
    this.components.set(component.id, component);
    return component;
  }

  /** Unregisters a component (without finalising it). */
  remove(id: string): boolean {
    const component = this.components.get(id);
    if (!component) return false;
    component.removeObserver(this.relay);
    return this.components.delete(id);
  }

  has(id: string): boolean {
    return this.components.has(id);
  }

  find(id: string): HalComponent | undefined {
    return this.components.get(id);
  }

  /** The component with `id`; throws UNKNOWN_COMPONENT naming the ids there are. */
  get(id: string): HalComponent {
    const component = this.components.get(id);
    if (!component) {
      throw new HalError("UNKNOWN_COMPONENT", `no component "${id}"; registered: ${[...this.components.keys()].join(", ") || "none"}`, { componentId: id });
    }
    return component;
  }

  /** The actuator with `id`; throws UNKNOWN_COMPONENT or WRONG_KIND. */
  actuator(id: string): HalActuator {
    const component = this.get(id);
    if (!(component instanceof HalActuator)) throw this.wrongKind(component, "actuator");
    return component;
  }

  /** The sensor with `id`; throws UNKNOWN_COMPONENT or WRONG_KIND. */
  sensor(id: string): HalSensor {
    const component = this.get(id);
    if (!(component instanceof HalSensor)) throw this.wrongKind(component, "sensor");
    return component;
  }

  /** Every component, in registration order. */
  list(): HalComponent[] {
    return [...this.components.values()];
  }

  /**
   * Initialises every Uninitialized component, in registration order. All are tried
   * even after a failure, so one report names every broken part; then, if any failed,
   * throws INIT_FAILED listing them (the failed ones are in Fault, the rest Ready).
   */
  initAll(): void {
    const failures: ComponentFailure[] = [];
    for (const component of this.list()) {
      if (component.state !== ComponentState.Uninitialized) continue;
      try {
        component.init();
      } catch (error) {
        failures.push({ componentId: component.id, error: toHalError(error, "INIT_FAILED", `${component.id}: initialisation failed`, component.id) });
      }
    }
    if (failures.length > 0) {
      throw new HalError(
        "INIT_FAILED",
        `${failures.length} of ${this.components.size} components failed to initialise: ${failures.map((f) => f.error.message).join("; ")}`,
        { cause: new AggregateError(failures.map((f) => f.error)) },
      );
    }
  }

  /** Finalises every component, last registered first. Never throws; failures are reported and returned. */
  finalizeAll(): FinalizeReport {
    const report: FinalizeReport = { finalized: [], failed: [] };
    for (const component of this.list().reverse()) {
      try {
        component.finalize();
        report.finalized.push(component.id);
      } catch (error) {
        report.failed.push({ componentId: component.id, error: this.asReported(error, "FINALIZE_FAILED", component) });
      }
    }
    return report;
  }

  /**
   * Commands zero velocity to every velocity-capable actuator in Ready or Fault. For a
   * drone's axes that means hover in place, not motors off. Never throws: each failure
   * goes to the Hal's observers and into the report, and the remaining actuators are
   * still stopped.
   */
  zeroMotion(): ZeroMotionReport {
    const report: ZeroMotionReport = { stopped: [], skipped: [], failed: [] };
    for (const component of this.list()) {
      try {
        if (!(component instanceof HalActuator) || !component.velocityCapable) continue;
        if (component.state !== ComponentState.Ready && component.state !== ComponentState.Fault) {
          report.skipped.push(component.id);
          continue;
        }
        component.stop();
        report.stopped.push(component.id);
      } catch (error) {
        report.failed.push({ componentId: component.id, error: this.asReported(error, "STOP_FAILED", component) });
      }
    }
    return report;
  }

  addObserver(observer: HalObserver): void {
    this.observers.add(observer);
  }

  removeObserver(observer: HalObserver): boolean {
    return this.observers.remove(observer);
  }

  /** Reports an error that belongs to no single component (a driver's loop, say) to the Hal's observers. */
  reportError(error: HalError): void {
    this.observers.notifyError(error);
  }

  /**
   * Components report their own driver failures (FINALIZE_FAILED, STOP_FAILED) to their
   * observers, which include the relay; anything else that escaped has not been heard
   * yet, so it is reported here. Either way each error reaches the observers once.
   */
  private asReported(error: unknown, code: "FINALIZE_FAILED" | "STOP_FAILED", component: HalComponent): HalError {
    if (error instanceof HalError && error.code === code) return error;
    const failure = new HalError(code, `${component.id}: ${code === "STOP_FAILED" ? "stop" : "finalize"} failed: ${error instanceof Error ? error.message : String(error)}`, {
      componentId: component.id, cause: error,
    });
    this.observers.notifyError(failure);
    return failure;
  }

  private wrongKind(component: HalComponent, wanted: ComponentKind): HalError {
    return new HalError("WRONG_KIND", `component "${component.id}" is a ${component.kind}, not a ${wanted}`, { componentId: component.id });
  }
}
