/**
 * Where an adapter's e-stop latch came from, and so who may clear it (docs/safety.md, "A
 * local e-stop at the adapter"). A latch raised at the machine (the local endpoint, a
 * physical button, the driver reporting its own stop engaged) holds locally: a
 * supervisor's Reset from afar is refused until a technician releases it at the machine
 * (release()), and while the driver's own stop is engaged neither works. A latch the
 * room raised needs only the Reset. Whoever clears it, the latch itself is
 * SafetyController's; this only says whether a Reset may.
 *
 * @example
 *   const origin = new EStopOrigin(driver);
 *   origin.raisedLocally();
 *   origin.resetRefusal();   // "the e-stop was raised at the machine; ..."
 *   origin.release(true);    // { released: true, ... }
 *   origin.resetRefusal();   // undefined: a supervisor's Reset clears it
 */
import type { Driver } from "../drivers/types.ts";

/** The answer to a local reset. */
export interface LocalResetOutcome {
  /** Whether the local hold was released: a supervisor's reset may now clear the latch. */
  released: boolean;
  /** Why not, or what happens next. */
  detail: string;
}

export class EStopOrigin {
  /** The device, asked whether its own stop is engaged. */
  private readonly driver: Driver;
  /** A latch was raised at the machine and no local reset has released it since. */
  private localHold = false;
  /** The driver's own stop was engaged at the last look (its engaging is raised once). */
  private driverStopSeen = false;

  constructor(driver: Driver) {
    this.driver = driver;
  }

  /** Whether a latch (if one holds) is held at the machine. */
  get local(): boolean {
    return this.localHold || this.driverStopEngaged();
  }

  /** A latch was raised at the machine. */
  raisedLocally(): void {
    this.localHold = true;
  }

  /** The latch was cleared (a supervisor's reset): nothing holds any more. */
  cleared(): void {
    this.localHold = false;
  }

  /** True once each time the driver's own stop goes from released to engaged. */
  driverStopNewlyEngaged(): boolean {
    const engaged = this.driverStopEngaged();
    const newly = engaged && !this.driverStopSeen;
    this.driverStopSeen = engaged;
    return newly;
  }

  /** The technician's release at the machine; `latched` is whether an e-stop latch holds. */
  release(latched: boolean): LocalResetOutcome {
    if (this.driverStopEngaged()) return { released: false, detail: "the device's own stop is still engaged: release it first" };
    if (!latched || !this.localHold) return { released: false, detail: "no e-stop raised at the machine is latched" };
    this.localHold = false;
    return { released: true, detail: "released locally; the e-stop stays latched until a supervisor resets it" };
  }

  /** Why a Reset from afar may not clear the latch now; undefined when it may. */
  resetRefusal(): string | undefined {
    if (this.driverStopEngaged()) return "the device's own stop is engaged; release it, reset locally at the adapter (POST /local-reset), then reset again";
    if (this.localHold) return "the e-stop was raised at the machine; a technician must reset it there first (POST /local-reset on the adapter), then reset again";
    return undefined;
  }

  /** Whether the driver reports its own stop engaged; a driver that throws counts as engaged (when in doubt, stop). */
  private driverStopEngaged(): boolean {
    if (typeof this.driver.stopEngaged !== "function") return false;
    try {
      return this.driver.stopEngaged() === true;
    } catch {
      return true;
    }
  }
}
