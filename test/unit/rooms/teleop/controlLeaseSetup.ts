/**
 * What the ControlLease tests share: a lease with counting ids ("L1", "L2", …) whose
 * events are recorded in order, and small readers of its results.
 */
import { expect } from "vitest";
import {
  ControlLease,
  type ControlLeaseEventName, type ControlLeaseEvents, type ControlLeaseOptions, type LeaseRefusalReason,
} from "../../../../rooms/teleop/ControlLease.ts";

export const TTL = 1000;

export type Recorded = { [E in ControlLeaseEventName]: [E, ControlLeaseEvents[E]] }[ControlLeaseEventName];
export const eventNames: ControlLeaseEventName[] = ["granted", "released", "expired", "preempted", "transferred", "estopped", "reset"];

/** A lease with counting ids ("L1", "L2", …) and every event recorded in order. */
export function setup(options: Partial<ControlLeaseOptions> = {}) {
  let next = 0;
  const lease = new ControlLease({ deviceId: "ex-1", ttlMs: TTL, newLeaseId: () => `L${++next}`, ...options });
  const events: Recorded[] = [];
  for (const name of eventNames) lease.on(name, (event) => events.push([name, event] as Recorded));
  return { lease, events };
}

/** The reason of a refused result (fails the test if it was not refused). */
export function reasonOf(result: { status: string; reason?: LeaseRefusalReason }): LeaseRefusalReason | undefined {
  expect(result.status).toBe("refused");
  return result.reason;
}

export function grantedId(result: { status: string; lease?: { leaseId: string } }): string {
  expect(result.status).toBe("granted");
  return result.lease!.leaseId;
}
