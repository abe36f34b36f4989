/**
 * The latency budget of a teleop room (DESIGN.md, "Teleoperation safety model"): each
 * lease holder's round trip to the room is probed with a Ping, and the holder's round
 * trip plus the device's (room↔adapter, from its acks) is held against the device's
 * budget. One slow probe is noise; BUDGET_STRIKES in a row (a probe unanswered for a
 * whole budget counts as one) is a link that cannot meet it: the holder is demoted to
 * observer. The room then ends every lease they hold, and for `demotionMs` they may not
 * take or be handed one. A demotion belongs to the operator's identity (the token's
 * subject), so leaving and joining again does not lift it.
 *
 * The budget is per device profile (DeviceProfile.latency_budget_ms), or the server's
 * default when the profile names none.
 *
 * @example
 *   const budget = new LatencyBudget(deviceIds, { now: Date.now, defaultBudgetMs: 150, demotionMs: 10_000,
 *     holder: (deviceId) => holderOf(deviceId), ping: (sessionId, id) => sendPing(sessionId, id),
 *     demoted: (demotion) => endLeasesOf(demotion.sessionId) });
 *   timers.every(250, () => budget.probeHolders());
 *   // on a Pong: budget.answer(client.sessionId, envelope.correlationId)
 *   if (budget.demotionLeftMs(subject) > 0) refuse(LATENCY_BUDGET_EXCEEDED);
 */
import type { tsunagi } from "../../proto/index.ts";

/** Probes in a row over budget before the holder is demoted (one slow sample is noise). */
export const BUDGET_STRIKES = 3;
/** Demoted identities a room remembers at once; the oldest is forgotten beyond this. */
export const MAX_DEMOTIONS = 1024;

/** A device's current lease holder, as the budget sees them. */
export interface BudgetHolder {
  sessionId: string;
  /** Who the operator is (the token's subject): what a demotion sticks to. */
  subject: string;
  /** Whether the device's adapter is connected: nobody is probed for an offline device. */
  online: boolean;
  /** The room↔adapter round trip, ms (0 while unknown). */
  deviceRttMs: number;
  profile: tsunagi.v1.IDeviceProfile | undefined;
}

/** A holder demoted for exceeding a device's budget. */
export interface Demotion {
  deviceId: string;
  sessionId: string;
  subject: string;
  /** The round trip that made the last strike, ms, and the budget it broke. */
  rttMs: number;
  budgetMs: number;
  /** Until when (server clock, ms) they may not hold a lease. */
  until: number;
  /** What to tell them. */
  message: string;
}

/** What the budget needs from its room. */
export interface LatencyBudgetHost {
  /** Server clock, ms. */
  now(): number;
  /** The budget when a device's profile names none, ms. */
  defaultBudgetMs: number;
  /** How long a demotion lasts, ms. */
  demotionMs: number;
  /** The device's lease holder now, if any (and they are still in the room). */
  holder(deviceId: string): BudgetHolder | undefined;
  /** Sends the holder a Ping carrying `correlationId`; its Pong comes back to answer(). */
  ping(sessionId: string, correlationId: number, now: number): void;
  /** The holder is demoted: tell them, record it, end every lease they hold here. */
  demoted(demotion: Demotion): void;
}

/** The budget of a device with this profile, ms. */
export function latencyBudgetMs(profile: tsunagi.v1.IDeviceProfile | undefined, fallbackMs: number): number {
  return profile?.latencyBudgetMs || fallbackMs;
}

export class LatencyBudget {
  /** The room's devices, probed in this order. */
  private readonly deviceIds: readonly string[];
  /** The room's clock, holders, and what to do on a demotion. */
  private readonly host: LatencyBudgetHost;
  /** The probe in flight to each device's holder, by device id. */
  private readonly probes = new Map<string, { correlationId: number; sentAt: number }>();
  /** Probes over budget in a row, by device id. */
  private readonly strikes = new Map<string, number>();
  /** Demoted subjects and until when, oldest first; bounded by MAX_DEMOTIONS. */
  private readonly demotedUntil = new Map<string, number>();
  /** Correlation id of the next probe. */
  private nextProbeId = 1;

  constructor(deviceIds: readonly string[], host: LatencyBudgetHost) {
    this.deviceIds = deviceIds;
    this.host = host;
  }

  /** The budget of a device with this profile, ms. */
  budgetFor(profile: tsunagi.v1.IDeviceProfile | undefined): number {
    return latencyBudgetMs(profile, this.host.defaultBudgetMs);
  }

  /** Probes each online device's holder; a probe unanswered for a whole budget is a strike. */
  probeHolders(): void {
    const now = this.host.now();
    for (const deviceId of this.deviceIds) {
      // Read afresh for each device: a demotion in this round ends the holder's other leases.
      const holder = this.host.holder(deviceId);
      if (!holder?.online) continue;
      const budgetMs = this.budgetFor(holder.profile);
      const probe = this.probes.get(deviceId);
      if (probe && now - probe.sentAt <= budgetMs) continue; // still in time: wait for it
      if (probe && this.strike(deviceId, holder, now - probe.sentAt + holder.deviceRttMs, budgetMs, now)) continue;
      const correlationId = this.nextProbeId++;
      this.probes.set(deviceId, { correlationId, sentAt: now });
      this.host.ping(holder.sessionId, correlationId, now);
    }
  }

  /** A Pong from `sessionId`: if it answers a probe of a device they hold, that round trip is judged. */
  answer(sessionId: string, correlationId: number): void {
    const now = this.host.now();
    for (const [deviceId, probe] of this.probes) {
      if (probe.correlationId !== correlationId) continue;
      const holder = this.host.holder(deviceId);
      if (holder?.sessionId !== sessionId) continue;
      this.probes.delete(deviceId);
      const rttMs = now - probe.sentAt + holder.deviceRttMs;
      const budgetMs = this.budgetFor(holder.profile);
      if (rttMs > budgetMs) this.strike(deviceId, holder, rttMs, budgetMs, now);
      else this.strikes.delete(deviceId);
      return;
    }
  }

  /** The device's lease changed: a probe in flight was sent to the previous holder and says nothing of the next. */
  leaseChanged(deviceId: string): void {
    this.probes.delete(deviceId);
    this.strikes.delete(deviceId);
  }

  /** How long `subject` stays demoted, ms (0: not demoted). Forgets a demotion that ended. */
  demotionLeftMs(subject: string): number {
    const until = this.demotedUntil.get(subject);
    if (until === undefined) return 0;
    const left = until - this.host.now();
    if (left <= 0) this.demotedUntil.delete(subject);
    return Math.max(0, left);
  }

  /** One probe over budget; returns true when it demoted the holder. */
  private strike(deviceId: string, holder: BudgetHolder, rttMs: number, budgetMs: number, now: number): boolean {
    this.probes.delete(deviceId);
    const strikes = (this.strikes.get(deviceId) ?? 0) + 1;
    this.strikes.set(deviceId, strikes);
    if (strikes < BUDGET_STRIKES) return false;
    const demotionMs = this.host.demotionMs;
    if (this.demotedUntil.size >= MAX_DEMOTIONS) this.demotedUntil.delete(this.demotedUntil.keys().next().value as string);
    const until = now + demotionMs;
    this.demotedUntil.set(holder.subject, until);
    const message = `round trip to ${deviceId} is ${rttMs.toFixed(1)} ms, above its ${budgetMs} ms budget: demoted to observer for ${Math.round(demotionMs / 1000)} s and the device stopped`;
    this.host.demoted({ deviceId, sessionId: holder.sessionId, subject: holder.subject, rttMs, budgetMs, until, message });
    return true;
  }
}
