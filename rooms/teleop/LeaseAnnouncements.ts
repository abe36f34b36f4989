/**
 * What a teleop room does at every change of a device's lease (granted, released,
 * revoked, expired, preempted, transferred, rekeyed by a move, e-stopped, reset): it is
 * counted, the lease's command summary is flushed when a lease ended, the latency budget
 * and the device's slot start over, the adapter and every participant get the new
 * LeaseState, and the audit log records it (a grant also tells the command audit whose
 * commands are whose). The room keeps the last state announced, to answer the request
 * that caused it.
 *
 * @example
 *   announceLeaseChanges(slot, { metrics, audit, latency, subjectOf, broadcast: (state) => room.broadcastLeaseState(state) });
 */
import type { tsunagi } from "../../proto/index.ts";
import type { NodeMetrics } from "../../server/observability/metrics.ts";
import type { CommandAudit } from "./CommandAudit.ts";
import type { DeviceSlot } from "./DeviceSlot.ts";
import type { LatencyBudget } from "./LatencyBudget.ts";
import type { LeaseGrant } from "./ControlLease.ts";

export interface LeaseAnnouncementHost {
  metrics: Pick<NodeMetrics, "leases">;
  audit: Pick<CommandAudit, "flushDevice" | "granted" | "record">;
  latency: Pick<LatencyBudget, "leaseChanged">;
  /** The token subject of a session in the room, if it is there. */
  subjectOf(sessionId: string): string | undefined;
  /** Sends `state` to every participant (the adapter has had it already). */
  broadcast(state: tsunagi.v1.ILeaseState): void;
}

export function announceLeaseChanges(slot: DeviceSlot, host: LeaseAnnouncementHost): void {
  const { lease, deviceId } = slot;
  const changed = (event: string, data: Record<string, unknown>, ended?: LeaseGrant, cause?: string) => {
    host.metrics.leases.inc({ event });
    if (ended) host.audit.flushDevice(deviceId);
    host.latency.leaseChanged(deviceId);
    slot.leaseChanged(Date.now());
    const state = slot.leaseState(ended, cause);
    slot.link?.sendLeaseState(state);
    host.broadcast(state);
    host.audit.record(`lease.${event}`, { deviceId, ...data });
  };
  const granted = (grant: LeaseGrant) => host.audit.granted(deviceId, grant.leaseId, grant.sessionId);
  const who = (grant: LeaseGrant) => ({ leaseId: grant.leaseId, sessionId: grant.sessionId, subject: host.subjectOf(grant.sessionId), role: grant.role });
  lease.on("granted", ({ lease: grant }) => { granted(grant); changed("granted", who(grant)); });
  lease.on("released", ({ lease: grant, cause }) => {
    const revokeCause = slot.takeRevokeCause();
    const reason = cause === "revoked" ? revokeCause ?? "revoked" : cause;
    changed(cause === "revoked" ? "revoked" : "released", { ...who(grant), cause: reason }, grant, reason);
  });
  lease.on("expired", ({ lease: grant }) => changed("expired", who(grant), grant, "expired"));
  lease.on("preempted", ({ previous, lease: grant }) => { granted(grant); changed("preempted", { previous: who(previous), ...who(grant) }, previous, "preempted"); });
  lease.on("transferred", ({ previous, lease: grant }) => { granted(grant); changed("transferred", { previous: who(previous), ...who(grant) }, previous, "transferred"); });
  lease.on("rekeyed", ({ previous, lease: grant }) => { granted(grant); changed("rekeyed", { previousLeaseId: previous.leaseId, ...who(grant) }, previous, "moved"); });
  lease.on("estopped", ({ latch, endedLease }) => changed("estopped", { by: latch.by, reason: latch.reason, endedLeaseId: endedLease?.leaseId }, endedLease, "estopped"));
  lease.on("reset", ({ by }) => changed("reset", { by: host.subjectOf(by) ?? by, sessionId: by }));
}
