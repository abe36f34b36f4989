/**
 * The base of every HAL component, after OpenEL's HALComponent: an id, a kind, static
 * properties, a lifecycle and observers.
 *
 * Subclasses implement the driver hooks (`onInit`, `onReinit`, `onFinalize`) and call
 * `enterFault()` when the hardware goes wrong; the base owns the state machine, so a
 * driver cannot forget a transition or its "state-changed" event.
 *
 * @example
 *   class Lamp extends HalActuator { ... }
 *   const lamp = new Lamp("lamp-1", properties);
 *   lamp.addObserver({ onEvent: (e) => console.log(e.type, e.componentId) });
 *   lamp.init();          // Uninitialized -> Ready
 *   lamp.setValue("position", 1);
 *   lamp.finalize();      // -> Finalized; further use throws HalStateError
 */
import { HalError, HalStateError, toHalError } from "./errors.ts";
import type { HalEvent, HalEventMap, HalObserver } from "./events.ts";
import { ObserverSet } from "./ObserverSet.ts";
import { ComponentState, type Clock, type ComponentKind, type ComponentOptions, type ComponentProperties } from "./types.ts";

/** Ids travel in commands and telemetry, so they stay short and shell/URL-safe. */
const componentIdPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export abstract class HalComponent {
  readonly id: string;
  abstract readonly kind: ComponentKind;
  readonly properties: Readonly<ComponentProperties>;
  /** Timestamps for readings and events. */
  protected readonly clock: Clock;
  /** Where the component is in its lifecycle; only transition() changes it. */
  private currentState: ComponentState = ComponentState.Uninitialized;
  /** Why the component is in Fault; cleared when it leaves Fault. */
  private currentFaultReason: string | undefined;
  /** Who hears this component's events and errors. */
  private readonly observers: ObserverSet<HalEvent>;

  constructor(id: string, properties: ComponentProperties, options: ComponentOptions = {}) {
    if (typeof id !== "string" || !componentIdPattern.test(id)) {
      throw new TypeError(`component id must match ${componentIdPattern}, got ${JSON.stringify(id)}`);
    }
    this.id = id;
    // a deep copy, frozen, so neither the caller nor a reader can change limits after the fact
    this.properties = Object.freeze({ ...properties, limits: Object.freeze({ ...properties.limits }) });
    this.clock = options.clock ?? Date.now;
    this.observers = new ObserverSet<HalEvent>(id);
  }

  get state(): ComponentState {
    return this.currentState;
  }

  /** Why the component is in Fault, or undefined outside Fault. */
  get faultReason(): string | undefined {
    return this.currentFaultReason;
  }

  /** Uninitialized -> Ready. On a driver failure the component goes to Fault and this throws INIT_FAILED. */
  init(): void {
    this.requireState("init", [ComponentState.Uninitialized]);
    this.runLifecycleHook(() => this.onInit(), "initialisation failed", "initialised");
  }

  /** Ready or Fault -> Ready: resets the device, the way out of Fault. Throws INIT_FAILED (and stays in Fault) if the driver fails. */
  reinit(): void {
    this.requireState("reinit", [ComponentState.Ready, ComponentState.Fault]);
    this.runLifecycleHook(() => this.onReinit(), "re-initialisation failed", "re-initialised");
  }

  /**
   * Any state -> Finalized, which is terminal. Idempotent. If the driver's shutdown
   * fails, the component is Finalized all the same (there is nothing left to retry
   * with), observers get FINALIZE_FAILED, and so does the caller.
   */
  finalize(): void {
    if (this.currentState === ComponentState.Finalized) return;
    const wasActive = this.currentState === ComponentState.Ready || this.currentState === ComponentState.Fault;
    let failure: HalError | undefined;
    if (wasActive) {
      try {
        this.onFinalize();
      } catch (error) {
        failure = toHalError(error, "FINALIZE_FAILED", `${this.id}: finalize failed`, this.id);
      }
    }
    this.transition(ComponentState.Finalized, failure ? `finalize failed: ${failure.message}` : "finalized");
    if (failure) {
      this.observers.notifyError(failure);
      throw failure;
    }
  }

  addObserver(observer: HalObserver): void {
    this.observers.add(observer);
  }

  removeObserver(observer: HalObserver): boolean {
    return this.observers.remove(observer);
  }

  /** Brings up the device. Throwing puts the component in Fault. */
  protected onInit(): void {}

  /** Resets the device; by default the same as onInit. */
  protected onReinit(): void {
    this.onInit();
  }

  /** Shuts the device down safely: an actuator stops here. */
  protected onFinalize(): void {}

  /** Called once on entering Fault, after the state changed; a vehicle starts its safe manoeuvre here. */
  protected onFault(_reason: string): void {}

  /** Throws HalStateError unless the component is in one of `allowed`. */
  protected requireState(operation: string, allowed: readonly ComponentState[]): void {
    if (!allowed.includes(this.currentState)) {
      throw new HalStateError(this.id, operation, this.currentState, allowed);
    }
  }

  /**
   * Puts the component in Fault: "state-changed", then "fault" to observers, then
   * `error` (if any) to their onError. No effect once Finalized; a second fault while
   * in Fault only updates the reason.
   */
  protected enterFault(reason: string, error?: HalError): void {
    if (this.currentState === ComponentState.Finalized) return;
    const alreadyFaulted = this.currentState === ComponentState.Fault;
    this.currentFaultReason = reason;
    if (!alreadyFaulted) this.transition(ComponentState.Fault, reason);
    this.emit("fault", { reason });
    if (error) this.observers.notifyError(error);
    if (!alreadyFaulted) {
      try {
        this.onFault(reason);
      } catch (hookError) {
        this.observers.notifyError(toHalError(hookError, "COMMAND_FAILED", `${this.id}: fault handling failed`, this.id));
      }
    }
  }

  /** Sends an event to every observer. */
  protected emit<K extends keyof HalEventMap>(type: K, payload: HalEventMap[K]): void {
    // the spread cannot prove the pairing of `type` and payload to TS; the signature does
    this.observers.notifyEvent({ ...payload, type, componentId: this.id, timestamp: this.clock() } as HalEvent);
  }

  /** Runs init or reinit: Ready on success; Fault, observers told and INIT_FAILED thrown on failure. */
  private runLifecycleHook(hook: () => void, failureMessage: string, successReason: string): void {
    try {
      hook();
    } catch (error) {
      const failure = toHalError(error, "INIT_FAILED", `${this.id}: ${failureMessage}`, this.id);
      this.enterFault(failure.message, failure);
      throw failure;
    }
    this.currentFaultReason = undefined;
    this.transition(ComponentState.Ready, successReason);
  }

  private transition(to: ComponentState, reason: string): void {
    const from = this.currentState;
    if (from === to) return;
    this.currentState = to;
    if (to !== ComponentState.Fault) this.currentFaultReason = undefined;
    this.emit("state-changed", { from, to, reason });
  }
}
