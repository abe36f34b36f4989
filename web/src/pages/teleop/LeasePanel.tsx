/**
 * The lease (take, release, take over; who holds it; its state) and the e-stop: a big
 * button fixed on screen for every role that may raise one, the latch when set, and
 * Reset for supervisors and admins.
 */
import type { LeaseState, RoomSession } from "../../../../client-sdk/index.ts";
import type { Cockpit } from "./useCockpit.ts";

/** Roles the room lets raise an e-stop and take a lease. */
export const DRIVER_ROLES = ["operator", "supervisor", "admin"];
/** Roles that may reset a latched e-stop and take a lease over. */
export const SUPERVISOR_ROLES = ["supervisor", "admin"];

export function latched(cockpit: Pick<Cockpit, "lease" | "telemetry">): boolean {
  return cockpit.lease?.estopped === true || cockpit.telemetry?.estopped === true;
}

function holderText(lease: LeaseState | undefined, session: RoomSession): string {
  if (!lease?.leaseId) return "nobody (free)";
  const who = lease.holderSessionId === session.sessionId ? "you" : `session ${lease.holderSessionId}`;
  return `${who} (${lease.holderRole || "?"})`;
}

export function LeasePanel(props: { cockpit: Cockpit; session: RoomSession; role: string }) {
  const { cockpit, session, role } = props;
  const lease = cockpit.lease;
  const canDrive = DRIVER_ROLES.includes(role);
  const isLatched = latched(cockpit);
  return (
    <section class="card" aria-labelledby="lease-title">
      <h2 id="lease-title">Lease</h2>
      <dl class="facts">
        <dt>Held by</dt><dd data-testid="lease-holder">{holderText(lease, session)}</dd>
        <dt>Device</dt><dd data-testid="device-online">{lease ? (lease.online ? "online" : "offline") : "unknown"}</dd>
        <dt>E-stop</dt><dd data-testid="estop-state" class={isLatched ? "error" : undefined}>{isLatched ? "LATCHED" : "clear"}</dd>
        {lease?.cause && <><dt>Last lease ended</dt><dd>{lease.cause}</dd></>}
      </dl>
      {lease && !lease.online && <p class="error" role="alert">The device is offline: its adapter is not connected to the room.</p>}
      {canDrive ? (
        <div class="row">
          {cockpit.holding
            ? <button type="button" onClick={cockpit.release}>Release lease</button>
            : <button type="button" class="primary" onClick={cockpit.acquire} disabled={!lease?.online || isLatched}>Take lease</button>}
          {SUPERVISOR_ROLES.includes(role) && !cockpit.holding && lease?.leaseId && <button type="button" onClick={cockpit.preempt}>Take over</button>}
        </div>
      ) : (
        <p class="muted" data-testid="observer-note">You are watching as {role}: leases, driving and the e-stop are for operators and supervisors.</p>
      )}
      {isLatched && <p class="latch" role="status">E-stop latched: the machine is stopped. {SUPERVISOR_ROLES.includes(role) ? "Reset it when the site is safe, then take the lease again." : "A supervisor must reset it."}</p>}
    </section>
  );
}

/** The e-stop, fixed on screen; the Space bar does the same from anywhere but a text field. */
export function EStopBar(props: { cockpit: Cockpit; role: string }) {
  const { cockpit, role } = props;
  const isLatched = latched(cockpit);
  return (
    <div class="estop-bar" role="region" aria-label="Emergency stop">
      {SUPERVISOR_ROLES.includes(role) && (
        <button type="button" class="reset" onClick={cockpit.reset} disabled={!isLatched}>Reset e-stop</button>
      )}
      <button type="button" class={`estop${isLatched ? " latched" : ""}`} onClick={cockpit.estop} aria-keyshortcuts="Space" aria-describedby="estop-hint">
        {isLatched ? "E-STOPPED" : "E-STOP"}
        <span class="estop-hint" id="estop-hint">Space</span>
      </button>
    </div>
  );
}
