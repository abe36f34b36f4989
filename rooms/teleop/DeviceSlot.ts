/**
 * One device of a teleop room: the link to its adapter while one is connected, its
 * control lease, what the room has seen under the current lease (last command and
 * heartbeat seq, the holder's last sign of life), the holder's rate allowance, and the
 * newest telemetry with the version each participant was last sent.
 *
 * A slot holds state and the rules that read only it; it sends nothing to anyone (its
 * lease's events are the room's to announce). The TeleopRoom drives the link, and the
 * CommandPipeline decides on commands with it.
 *
 * @example
 *   const slot = new DeviceSlot({ deviceId: "ex-1", lease: new ControlLease({ deviceId: "ex-1" }) });
 *   slot.attach(link, { onTelemetry: (t) => slot.newTelemetry(t) });
 *   if (!slot.takeToken()) return refuse("RATE_LIMITED");
 *   if (slot.holderSilent(Date.now(), 20)) slot.revoke("watchdog");
 */
import { TokenBucket } from "../../common/TokenBucket.ts";
import { watchdogWindowMs } from "../../proto/deviceProfile.ts";
import type { tsunagi } from "../../proto/index.ts";
import type { DeviceLink, DeviceLinkHandler } from "../../server/gateway/DeviceLink.ts";
import type { ControlLease, LeaseGrant } from "./ControlLease.ts";

/** What a room uses of a DeviceLink; tests hand a slot a fake of it. */
export type SlotLink = Pick<DeviceLink,
  "deviceId" | "adapterVersion" | "driver" | "profile" | "online" | "stats" | "bind"
  | "sendCommand" | "sendAction" | "sendEStop" | "sendReset" | "sendLeaseState" | "sendHeartbeat" | "sendCameraTarget">;

export interface DeviceSlotOptions {
  deviceId: string;
  lease: ControlLease;
  /** Server clock, ms, for the rate allowance. Default Date.now. */
  now?: () => number;
}

/** How often, at most, a holder over its rate is told so with a coded error, ms. */
const RATE_LIMIT_REPORT_MS = 1000;

/**
 * Requests per second (and burst) a device's commands and actions may arrive at: twice
 * its control rate, at least 100 (device.proto, DeviceProfile.control_rate_hz).
 */
export function commandBurst(profile: tsunagi.v1.IDeviceProfile | undefined): number {
  return Math.max(100, 2 * (profile?.controlRateHz || 0));
}

export class DeviceSlot {
  readonly deviceId: string;
  readonly lease: ControlLease;
  /** Highest command seq forwarded under the current lease. */
  lastSeq = 0;
  /** Highest heartbeat seq forwarded under the current lease. */
  lastHeartbeatSeq = 0;
  /** When the holder last sent a valid command or heartbeat (the adapter's watchdog, mirrored). */
  lastRenewAt = 0;
  /** The newest telemetry of the device, if it sent any. */
  telemetry: tsunagi.v1.Telemetry | undefined;

  /** Server clock, for the rate allowance. */
  private readonly now: () => number;
  /** The connected adapter's link; undefined while the device is offline. */
  private currentLink: SlotLink | undefined;
  /** Unbinds the room from the current link. */
  private unbind: (() => void) | undefined;
  /** Why the room revoked the current lease, for the LeaseState cause. */
  private revokeCause: string | undefined;
  /** The holder's allowance of commands and actions, sized by the device's profile. */
  private allowance: TokenBucket;
  /** When the holder was last told RATE_LIMITED. */
  private rateLimitReportedAt = -Infinity;
  /** Bumped by each telemetry sample, so "changed since sent" is one comparison. */
  private telemetryVersion = 0;
  /** The newest telemetry encoded once, the same frame for every participant. */
  private telemetryFrame: Uint8Array | undefined;
  /** The telemetry version telemetryFrame holds. */
  private frameVersion = 0;
  /** Per participant session: the telemetry version it was last sent. */
  private readonly sentVersion = new Map<string, number>();

  constructor(options: DeviceSlotOptions) {
    this.deviceId = options.deviceId;
    this.lease = options.lease;
    this.now = options.now ?? Date.now;
    this.allowance = this.newAllowance(undefined);
  }

  get link(): SlotLink | undefined {
    return this.currentLink;
  }

  // --- link --------------------------------------------------------------------------

  /** Makes `link` the device's link (replacing any other) with the room's handler on it. */
  attach(link: SlotLink, handler: DeviceLinkHandler): void {
    this.unbind?.();
    this.currentLink = link;
    this.unbind = link.bind(handler);
  }

  /** The link closed: forgets it, if it is still the current one (a newer link may have replaced it). */
  linkClosed(link: SlotLink): boolean {
    if (this.currentLink !== link) return false;
    this.currentLink = undefined;
    this.unbind = undefined;
    return true;
  }

  /** The room is closing: it stops listening to the link. */
  detach(): void {
    this.unbind?.();
    this.unbind = undefined;
  }

  // --- lease -------------------------------------------------------------------------

  /** The room takes the lease away for a reason of its own, announced as the LeaseState cause. */
  revoke(cause: string): void {
    this.revokeCause = cause;
    this.lease.revoke();
  }

  /** The cause of the revocation in progress, once (undefined when the lease ended otherwise). */
  takeRevokeCause(): string | undefined {
    const cause = this.revokeCause;
    this.revokeCause = undefined;
    return cause;
  }

  /** The lease changed hands or ended: sequences start again, and the new holder's silence is counted from now. */
  leaseChanged(now: number): void {
    this.lastSeq = 0;
    this.lastHeartbeatSeq = 0;
    this.lastRenewAt = now;
  }

  /**
   * Whether the holder has been silent longer than the adapter's watchdog window (plus
   * `slackMs` for the room's own tick), so the adapter has stopped the device already.
   */
  holderSilent(now: number, slackMs: number): boolean {
    if (!this.lease.holder || !this.currentLink) return false;
    return now - this.lastRenewAt > watchdogWindowMs(this.currentLink.profile) + slackMs;
  }

  /** A heartbeat from the holder: false for a duplicate or reordered one, which proves nothing. */
  acceptHeartbeat(seq: number, now: number): boolean {
    if (seq <= this.lastHeartbeatSeq) return false;
    this.lastHeartbeatSeq = seq;
    this.lastRenewAt = now;
    return true;
  }

  /** The device's LeaseState as participants and the adapter are told it. */
  leaseState(ended?: LeaseGrant, cause?: string): tsunagi.v1.ILeaseState {
    const holder = this.lease.holder;
    return {
      deviceId: this.deviceId,
      leaseId: holder?.leaseId ?? "",
      holderSessionId: holder?.sessionId ?? "",
      holderRole: holder?.role ?? "",
      expiresAtMs: holder?.expiresAt ?? 0,
      ttlMs: this.lease.ttlMs,
      estopped: this.lease.estopped,
      endedLeaseId: ended?.leaseId ?? "",
      cause: cause ?? "",
      online: this.currentLink?.online ?? false,
    };
  }

  // --- rate allowance ----------------------------------------------------------------

  /**
   * Takes one request from the holder's allowance (commandBurst of the current profile);
   * false when it is spent. Only the holder draws on it, so nobody else can starve it.
   */
  takeToken(): boolean {
    const burst = commandBurst(this.currentLink?.profile);
    if (burst !== this.allowance.burst) this.allowance = this.newAllowance(this.currentLink?.profile);
    return this.allowance.take();
  }

  /** A new profile: a full allowance at its rate. */
  resetAllowance(profile: tsunagi.v1.IDeviceProfile): void {
    this.allowance = this.newAllowance(profile);
  }

  /** Whether a refusal for rate now should be told to the holder (once a second): one per dropped command would be a flood of our own. */
  reportRateLimit(now: number): boolean {
    if (now - this.rateLimitReportedAt < RATE_LIMIT_REPORT_MS) return false;
    this.rateLimitReportedAt = now;
    return true;
  }

  // --- telemetry ---------------------------------------------------------------------

  /**
   * Keeps the newest sample (devices sample faster than the room fans out, so encoding
   * waits for the fan-out). A sample saying the adapter's watchdog killed the holder's
   * lease (device.proto, Telemetry.watchdog_tripped) ends it here too, also when the room still
   * took the holder's heartbeats for live.
   */
  newTelemetry(telemetry: tsunagi.v1.Telemetry): void {
    this.telemetry = telemetry;
    this.telemetryVersion++;
    const holder = this.lease.holder;
    if (telemetry.watchdogTripped && holder && telemetry.leaseId === holder.leaseId) this.revoke("watchdog");
  }

  /** The newest telemetry as one frame for everyone, encoded at most once per sample; undefined before the first. */
  telemetryFrameOnce(encode: (telemetry: tsunagi.v1.Telemetry) => Uint8Array): Uint8Array | undefined {
    if (!this.telemetry) return undefined;
    if (this.frameVersion !== this.telemetryVersion) {
      this.telemetryFrame = encode(this.telemetry);
      this.frameVersion = this.telemetryVersion;
    }
    return this.telemetryFrame!;
  }

  /** Whether the participant has not been sent the newest sample yet. */
  telemetryDue(sessionId: string): boolean {
    return this.sentVersion.get(sessionId) !== this.telemetryVersion;
  }

  telemetrySent(sessionId: string): void {
    this.sentVersion.set(sessionId, this.telemetryVersion);
  }

  /** The participant left the room. */
  forget(sessionId: string): void {
    this.sentVersion.delete(sessionId);
  }

  private newAllowance(profile: tsunagi.v1.IDeviceProfile | undefined): TokenBucket {
    const burst = commandBurst(profile);
    return new TokenBucket(burst, burst, this.now);
  }
}
