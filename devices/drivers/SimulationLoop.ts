/**
 * Runs a simulation's step() on a real timer with a fixed step (10 ms, i.e. 100 Hz).
 *
 * Timers are late under load, so each tick simulates the real time that has passed,
 * in whole fixed steps. The catch-up per tick is bounded: after a long stall (a
 * debugger, a suspended VM) the backlog beyond `maxStepsPerTick` is dropped rather than
 * replayed, because replaying seconds of motion in one burst is worse than losing them.
 * If step() throws, the loop stops and reports: a model that fails half-way through a
 * step must not keep moving a machine.
 *
 * @example
 *   const loop = new SimulationLoop((dtMs) => excavator.step(dtMs), { onError: (e) => log.error(e) });
 *   loop.start();
 *   loop.stop();
 */
import type { Hal } from "../hal/Hal.ts";
import { toHalError } from "../hal/errors.ts";

export interface SimulationLoopOptions {
  /** Fixed step, ms. Default 10 (100 Hz). */
  stepMs?: number;
  /** Most steps one tick runs to catch up; the rest of the backlog is dropped. Default 10. */
  maxStepsPerTick?: number;
  /** Monotonic milliseconds. Default performance.now. */
  now?: () => number;
  /** Hears an error thrown by step(); the loop has already stopped. */
  onError?: (error: unknown) => void;
}

/**
 * The loop a simulated driver runs on its HAL: a failed step is reported to the HAL's
 * observers and every actuator is commanded to zero, since a broken model must leave
 * the machine still.
 */
export function driverLoop(
  driverName: string,
  hal: Hal,
  step: (dtMs: number) => void,
  options: Omit<SimulationLoopOptions, "onError"> = {},
): SimulationLoop {
  return new SimulationLoop(step, {
    ...options,
    onError: (error) => {
      hal.reportError(toHalError(error, "STEP_FAILED", `${driverName}: simulation step failed; loop stopped`));
      hal.zeroMotion();
    },
  });
}

export class SimulationLoop {
  /** The simulation being driven. */
  private readonly step: (dtMs: number) => void;
  /** Fixed step, ms. */
  readonly stepMs: number;
  /** Catch-up bound per tick. */
  private readonly maxStepsPerTick: number;
  /** Monotonic clock. */
  private readonly now: () => number;
  /** Where step() failures go. */
  private readonly onError: (error: unknown) => void;
  /** The interval while running. */
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Monotonic time up to which real time has been accounted for. */
  private accountedUntil = 0;
  /** Real time elapsed but not yet simulated; below stepMs after each tick. */
  private backlogMs = 0;
  /** Real time dropped after stalls, for diagnostics. */
  private droppedTotalMs = 0;

  constructor(step: (dtMs: number) => void, options: SimulationLoopOptions = {}) {
    this.step = step;
    this.stepMs = options.stepMs ?? 10;
    this.maxStepsPerTick = options.maxStepsPerTick ?? 10;
    this.now = options.now ?? (() => performance.now());
    this.onError = options.onError ?? (() => {});
    if (!(this.stepMs > 0) || !Number.isInteger(this.maxStepsPerTick) || this.maxStepsPerTick < 1) {
      throw new TypeError("SimulationLoop needs stepMs > 0 and an integer maxStepsPerTick >= 1");
    }
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Milliseconds of real time skipped because the loop fell too far behind. */
  get droppedMs(): number {
    return this.droppedTotalMs;
  }

  start(): void {
    if (this.timer) return;
    this.accountedUntil = this.now();
    this.backlogMs = 0;
    this.timer = setInterval(() => this.tick(), this.stepMs);
    // the adapter's connection keeps the process alive; a simulation alone should not
    this.timer.unref?.();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = this.now();
    this.backlogMs += Math.max(0, now - this.accountedUntil);
    this.accountedUntil = now;
    let steps = 0;
    while (this.backlogMs >= this.stepMs && steps < this.maxStepsPerTick && this.timer) {
      this.backlogMs -= this.stepMs;
      steps += 1;
      try {
        this.step(this.stepMs);
      } catch (error) {
        this.stop();
        try {
          this.onError(error);
        } catch {
          // an exception escaping a timer callback would take the whole adapter process down
        }
        return;
      }
    }
    if (this.backlogMs >= this.stepMs) {
      const dropped = this.backlogMs - (this.backlogMs % this.stepMs);
      this.droppedTotalMs += dropped;
      this.backlogMs -= dropped;
    }
  }
}
