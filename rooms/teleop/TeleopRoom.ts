/**
 * A teleoperation room: one or more devices, and participants who watch (visitors,
 * hosts), drive (operators) or oversee (supervisors). The room arbitrates who drives
 * each device (ControlLease), checks every command before it reaches the device,
 * relays acks and telemetry, and records what happened (AuditLog).
 *
 * Everything travels as Envelopes in the "pb" message (teleop.proto, "Operator channel").
 *
 * Command pipeline, per ControlCommand, in teleop.proto's order:
 *   device known → rate limit → ESTOPPED → lease (NO_LEASE) → deadline (EXPIRED) →
 *   seq (STALE) → bounds (OUT_OF_BOUNDS) → device online (DEVICE_OFFLINE) → forward.
 * A refusal is acked by the room (origin ROOM); a forwarded command is acked by the
 * adapter, and the room adds the room↔adapter round trip before relaying the ack.
 *
 * Safety behaviour (DESIGN.md, "Teleoperation safety model"):
 * - E-stop goes to the device before anything else happens, bypassing every queue;
 *   it latches in the room and at the adapter until a supervisor resets; motion then
 *   needs a fresh lease. A latched device gets the e-stop again whenever its adapter
 *   reconnects.
 * - The lease ends when its holder disconnects, lets it lapse, goes silent longer
 *   than the device's watchdog window, or when the device goes offline. The adapter
 *   is told at once (LeaseState with no lease) and zeroes motion.
 * - Latency budget: the room pings each lease holder; holder RTT + device RTT above
 *   the device's budget three times running demotes the holder to observer for
 *   `teleop.demotionMs` and stops the device.
 *
 * @example
 *   // server side (the demo does this)
 *   await matchMaker.createRoom("teleop", { roomId: "site-1", devices: ["excavator-1", "drone-1"] });
 *   // client side: see client-sdk/OperatorControls.ts
 */
import { ServerError, getMessageBytes, type AuthContext, type Client } from "@colyseus/core";
import { ErrorCode, encodeEnvelope, ENVELOPE_MESSAGE_TYPE, TRUSTED, tsunagi } from "../../proto/index.ts";

type Envelope = tsunagi.v1.Envelope;
import { tokenAuth, ClusterRoom } from "../shared/ClusterRoom.ts";
import { clientBufferedAmount, Protocol } from "../../server/colyseus/internals.ts";
import { PeriodicTasks } from "../shared/PeriodicTasks.ts";
import { requestDevice } from "../../server/gateway/DeviceRequests.ts";
import { nodeContext, type NodeContext } from "../../server/context.ts";
import type { Role, TokenClaims } from "../../server/auth/tokens.ts";
import { ControlLease, type LeaseGrant, type LeaseRefused } from "./ControlLease.ts";
import type { AuditSink } from "../../server/audit/AuditLog.ts";
import type { DeviceLink } from "../../server/gateway/DeviceLink.ts";
import { roomAck, roomActionResult } from "../../server/gateway/DeviceLink.ts";
import { actionProblem, axesProblem, effectiveDeadlineMs, watchdogWindowMs } from "../../proto/deviceProfile.ts";
import { DEVICE_ID_TEXT, isDeviceId } from "../../proto/ids.ts";

const Status = tsunagi.v1.CommandAck.Status;
type Status = tsunagi.v1.CommandAck.Status;

/** Roles that may raise an e-stop. Raising one is always safe, so everyone who may drive may stop. */
const estopRoles: readonly Role[] = ["operator", "supervisor", "admin"];
const MAX_DEVICES = 32;
/** Demoted identities a room remembers at once; the oldest is forgotten beyond this. */
const MAX_DEMOTIONS = 1024;
/** Probes in a row over budget before the holder is demoted (one slow sample is noise). */
const BUDGET_STRIKES = 3;
/** A participant whose socket holds more than this unsent gets no telemetry this tick. */
const TELEMETRY_BACKPRESSURE_BYTES = 128 * 1024;
/** How often the room checks lease expiry and the silent-holder watchdog, ms. */
const TICK_MS = 20;
/** An EStop.raised_at_ms further than this from the room's clock is not believed, ms. */
const PLAUSIBLE_CLOCK_SKEW_MS = 10_000;
/** How often command summaries go to the audit log, ms. */
const SUMMARY_MS = 1000;
/** How often a room asks the region's other nodes for its devices not connected here. */
const DEVICE_REQUEST_MS = 2000;

export interface TeleopRoomOptions {
  roomId?: string;
  /** The devices of this room, by enrolled id. */
  devices: string[];
}

/** Who is in the room. */
interface Participant {
  client: Client;
  role: Role;
  subject: string;

}

/** Commands of one lease since the last audit summary. */
interface CommandSummary {
  leaseId: string;
  sessionId: string;
  counts: Partial<Record<string, number>>;
  firstSeq: number;
  lastSeq: number;
  from: number;
  to: number;
}

/** One device of the room. */
interface DeviceSlot {
  deviceId: string;
  lease: ControlLease;
  link?: DeviceLink;
  unbind?: () => void;
  /** Highest seq forwarded under the current lease. */
  lastSeq: number;
  lastHeartbeatSeq: number;
  /** When the holder last sent a valid command or heartbeat (the adapter's watchdog, mirrored). */
  lastRenewAt: number;
  /** Why the room revoked the current lease, for the LeaseState cause. */
  revokeCause?: string;
  /** Newest telemetry, and a counter for "changed since sent". */
  telemetry?: tsunagi.v1.Telemetry;
  /** The newest telemetry as a whole Colyseus frame, encoded once at fan-out for every participant, and the version it holds. */
  telemetryFrame?: Uint8Array;
  frameVersion: number;
  telemetryVersion: number;
  /** Per-participant: the telemetry version last sent. */
  sentVersion: Map<string, number>;
  /** Command rate limit: tokens and last refill. */
  tokens: number;
  tokensAt: number;
  /** Latency probe of the holder: outstanding ping, strikes. */
  probe?: { correlationId: number; sentAt: number };
  strikes: number;
  /** Session of each recent lease, by lease id, so late acks are counted under who sent them. */
  grants: Map<string, string>;
  /** When the holder was last told RATE_LIMITED (once a second at most). */
  rateLimitedAt: number;
  summary?: CommandSummary;
}

/** Roles that may open a teleop room, naming the machines it controls. */
const creatorRoles: readonly Role[] = ["supervisor", "admin"];
const joinAuth = tokenAuth(["operator", "supervisor", "visitor", "host"]);

export class TeleopRoom extends ClusterRoom<TeleopRoomOptions> {
  /**
   * Any of the room's roles may join. Only a supervisor (or admin) may create one: the
   * `devices` option binds real machines to the room, so naming them is a site decision.
   */
  static async onAuth(token: string, options: any, context: AuthContext): Promise<TokenClaims> {
    const claims = await joinAuth(token, options, context);
    if (options && typeof options === "object" && "devices" in options && !creatorRoles.includes(claims.role)) {
      const { metrics, logger } = nodeContext();
      metrics.errors.inc({ code: "FORBIDDEN", source: "auth" });
      logger.warn({ role: claims.role, sub: claims.sub }, "teleop room creation refused: not a supervisor");
      throw new ServerError(ErrorCode.FORBIDDEN, `only a supervisor may open a teleop room and name its devices (you are ${claims.role})`);
    }
    return claims;
  }
  maxClients = 64;

  private readonly slots = new Map<string, DeviceSlot>();
  private readonly participants = new Map<string, Participant>();
  private context!: NodeContext;
  private audit!: AuditSink;
  private readonly timers = new PeriodicTasks();
  private detachGateway?: () => void;
  /** The devices this room holds in the directory (and on this node); released on dispose. */
  private deviceClaims: { context: NodeContext; devices: string[] } | undefined;
  private nextProbeId = 1;
  /** The room's devices, in the order they were given. */
  private deviceIds: string[] = [];
  /**
   * Demoted identities (token subjects) and until when: kept by who the operator is, not
   * by session, so leaving and joining again does not lift a demotion. Bounded.
   */
  private readonly demotedUntil = new Map<string, number>();

  async onCreate(options: TeleopRoomOptions & { roomId?: unknown }) {
    const devices = parseDevices(options?.devices);
    this.deviceIds = devices;
    // A site's room outlives its participants: its machines stay bound to it (stopped,
    // with no lease) until the node stops, so the next operator finds them there.
    this.autoDispose = false;
    const context = nodeContext();
    await super.onCreate(options); // claims the room id (and sets it)
    // On a refusal Colyseus discards the room, which releases the room id again.
    await this.claimDevices(context, devices);
    this.context = context;
    this.audit = this.context.audit(this.roomId);
    const teleop = this.context.config.teleop;
    for (const deviceId of devices) {
      const lease = new ControlLease({
        deviceId, ttlMs: teleop.leaseTtlMs,
        onListenerError: (error) => this.context.logger.error({ err: error, roomId: this.roomId }, "lease listener failed"),
      });
      const slot: DeviceSlot = {
        deviceId, lease, lastSeq: 0, lastHeartbeatSeq: 0, lastRenewAt: 0, telemetryVersion: 0,
        sentVersion: new Map(), frameVersion: 0, tokens: 0, tokensAt: 0, strikes: 0, grants: new Map(), rateLimitedAt: 0,
      };
      this.slots.set(deviceId, slot);
      this.watchLease(slot);
      const link = this.context.gateway.link(deviceId);
      if (link) this.attach(slot, link);
    }
    this.detachGateway = this.context.gateway.onAttach((link) => {
      const slot = this.slots.get(link.deviceId);
      if (slot) this.attach(slot, link);
    });

    this.onEnvelope("leaseRequest", (client, envelope) => this.onLeaseRequest(client, envelope));
    this.onEnvelope("controlCommand", (client, envelope) => this.onCommand(client, envelope));
    this.onEnvelope("deviceAction", (client, envelope) => this.onAction(client, envelope));
    this.onEnvelope("heartbeat", (client, envelope) => this.onHeartbeat(client, envelope));
    this.onEnvelope("estop", (client, envelope) => this.onEStop(client, envelope));
    this.onEnvelope("reset", (client, envelope) => this.onReset(client, envelope));
    this.onEnvelope("clockSyncPing", (client, envelope) => {
      const t1 = Date.now();
      this.sendEnvelope(client, { correlationId: envelope.correlationId, clockSyncPong: { t0Ms: envelope.clockSyncPing!.t0Ms, t1Ms: t1, t2Ms: Date.now() } });
    });
    this.onEnvelope("pong", (client, envelope) => this.onPong(client, envelope));

    // Each at its own phase: rooms opened together must not fan out, probe or summarise in one burst.
    this.timers.every(TICK_MS, () => this.tick());
    this.timers.every(Math.max(10, Math.round(1000 / teleop.telemetryHz)), () => this.fanOutTelemetry());
    this.timers.every(teleop.rttProbeMs, () => this.probeHolders());
    this.timers.every(SUMMARY_MS, () => this.flushSummaries());
    // Devices connected to another node of the region are asked over (DeviceRequests).
    this.timers.every(DEVICE_REQUEST_MS, () => this.requestMissingDevices());
    this.requestMissingDevices();
    this.record("room.opened", { devices });
    this.context.logger.info({ roomId: this.roomId, devices }, `teleop room ${this.roomId} opened with ${devices.join(", ")}`);
  }

  protected listingMetadata() {
    return { devices: this.deviceIds };
  }

  onJoin(client: Client, options?: unknown, auth?: TokenClaims) {
    super.onJoin(client, options, auth);
    this.participants.set(client.sessionId, { client, role: auth?.role ?? "visitor", subject: auth?.sub ?? client.sessionId });
    this.greet(client);
  }

  onReconnect(client: Client) {
    const participant = this.participants.get(client.sessionId);
    if (participant) participant.client = client;
    this.greet(client);
  }

  onDrop(client: Client, code?: number) {
    // A dropped operator connection ends the lease at once (DESIGN.md): the device stops.
    this.releaseAllOf(client.sessionId);
    super.onDrop(client, code);
  }

  onLeave(client: Client) {
    this.releaseAllOf(client.sessionId);
    this.participants.delete(client.sessionId);
    for (const slot of this.slots.values()) slot.sentVersion.delete(client.sessionId);
  }

  onDispose() {
    // Also called for a room whose onCreate refused (Colyseus discards it): release only
    // what this room claimed, and touch nothing that onCreate did not set up.
    const claimed = this.deviceClaims;
    this.deviceClaims = undefined;
    if (claimed) void this.releaseDevices(claimed.context, claimed.devices);
    this.timers.stop();
    if (!this.context) return;
    this.detachGateway?.();
    this.flushSummaries();
    for (const slot of this.slots.values()) {
      slot.lease.close();
      slot.link?.sendLeaseState({ deviceId: slot.deviceId, leaseId: "", online: true, cause: "closed" });
      slot.unbind?.();
    }
    this.record("room.closed", {});
  }

  /**
   * Binds the devices to this room, on this node (one room each) and in the cluster's
   * directory (one room each, whichever node its adapter is on); all or none.
   */
  private async claimDevices(context: NodeContext, devices: string[]) {
    for (const deviceId of devices) {
      const owner = deviceOwners.get(deviceId);
      if (owner) throw new ServerError(ErrorCode.ROOM_CONFLICT, `device ${deviceId} already belongs to room "${owner}" on this node`);
    }
    for (const deviceId of devices) deviceOwners.set(deviceId, this.roomId);
    const owner = { roomId: this.roomId, regionId: context.regionId, nodeId: context.nodeId, gatewayUrl: context.gatewayUrl };
    const claimed: string[] = [];
    try {
      for (const deviceId of devices) {
        const claim = await context.directory.claimDevice(deviceId, owner);
        if (!claim.claimed) {
          throw new ServerError(ErrorCode.ROOM_CONFLICT, `device ${deviceId} already belongs to room "${claim.owner.roomId}" on node ${claim.owner.nodeId} (region ${claim.owner.regionId})`);
        }
        claimed.push(deviceId);
      }
      this.deviceClaims = { context, devices: claimed };
    } catch (error) {
      await this.releaseDevices(context, claimed);
      for (const deviceId of devices) if (deviceOwners.get(deviceId) === this.roomId) deviceOwners.delete(deviceId);
      throw error instanceof ServerError ? error : new ServerError(ErrorCode.INTERNAL, `could not claim the room's devices: ${(error as Error).message}`);
    }
  }

  private async releaseDevices(context: NodeContext, devices: string[]) {
    for (const deviceId of devices) {
      if (deviceOwners.get(deviceId) === this.roomId) deviceOwners.delete(deviceId);
      await context.directory.releaseDevice(deviceId, this.roomId).catch((error) => {
        context.logger.warn({ err: error, deviceId, roomId: this.roomId }, `device ${deviceId}: releasing its claim failed; another room may take it over once this node leaves the registry`);
      });
    }
  }

  /** Asks the region's other nodes for the devices whose adapters are not connected here. */
  private requestMissingDevices() {
    for (const slot of this.slots.values()) {
      if (slot.link?.online) continue;
      requestDevice(this.presence, this.context.config.clusterName, { deviceId: slot.deviceId, roomId: this.roomId, nodeId: this.context.nodeId });
    }
  }

  // --- devices -----------------------------------------------------------------------

  private attach(slot: DeviceSlot, link: DeviceLink) {
    slot.unbind?.();
    slot.link = link;
    slot.unbind = link.bind({
      onProfile: (profile) => {
        this.broadcastEnvelope({ correlationId: 0, deviceProfile: profile });
        slot.tokens = commandBurst(profile);
      },
      onTelemetry: (telemetry) => {
        // Devices sample faster than the room fans out: encode at fan-out, only what goes out.
        slot.telemetry = telemetry;
        slot.telemetryVersion++;
        // The adapter's watchdog killed the holder's lease (teleop.proto, watchdog_tripped):
        // end it here too, also when the room still took the holder's heartbeats for live.
        const holder = slot.lease.holder;
        if (telemetry.watchdogTripped && holder && telemetry.leaseId === holder.leaseId) this.revoke(slot, "watchdog");
      },
      onDeviceEStop: (estop) => this.latchEStop(slot, `device:${slot.deviceId}`, estop.reason || "raised on the device", "device"),
      onClosed: (reason) => {
        if (slot.link !== link) return;
        slot.link = undefined;
        slot.unbind = undefined;
        this.context.logger.warn({ roomId: this.roomId, deviceId: slot.deviceId, reason }, `device ${slot.deviceId} went offline`);
        if (slot.lease.holder) this.revoke(slot, "device-offline");
        else this.broadcastLeaseState(slot);
        this.record("device.offline", { deviceId: slot.deviceId, reason });
      },
    });
    // The device starts from "no lease"; a latched e-stop is re-raised so an adapter
    // that restarted latches again.
    if (slot.lease.holder) this.revoke(slot, "device-offline");
    const latch = slot.lease.estopLatch;
    if (latch) link.sendEStop({ deviceId: slot.deviceId, reason: `latched: ${latch.reason}`, raisedBy: latch.by, raisedAtMs: latch.at });
    link.sendLeaseState(this.leaseState(slot));
    this.broadcastLeaseState(slot);
    this.record("device.online", { deviceId: slot.deviceId, adapterVersion: link.adapterVersion, driver: link.driver });
  }

  // --- lease -------------------------------------------------------------------------

  private watchLease(slot: DeviceSlot) {
    const { lease } = slot;
    const changed = (event: string, data: Record<string, unknown>, ended?: LeaseGrant, cause?: string) => {
      this.context.metrics.leases.inc({ event });
      if (ended) this.flushSummary(slot);
      // A probe in flight was sent to the previous holder: it says nothing about the next one.
      slot.probe = undefined;
      slot.lastSeq = 0;
      slot.lastHeartbeatSeq = 0;
      slot.strikes = 0;
      slot.lastRenewAt = Date.now();
      const state = this.leaseState(slot, ended, cause);
      slot.link?.sendLeaseState(state);
      this.broadcastEnvelope({ correlationId: 0, leaseState: state });
      this.record(`lease.${event}`, { deviceId: slot.deviceId, ...data });
    };
    const granted = (grant: LeaseGrant) => {
      slot.grants.set(grant.leaseId, grant.sessionId);
      if (slot.grants.size > 8) slot.grants.delete(slot.grants.keys().next().value as string);
    };
    const who = (grant: LeaseGrant) => ({ leaseId: grant.leaseId, sessionId: grant.sessionId, subject: this.participants.get(grant.sessionId)?.subject, role: grant.role });
    lease.on("granted", ({ lease: grant }) => { granted(grant); changed("granted", who(grant)); });
    lease.on("released", ({ lease: grant, cause }) => {
      const reason = cause === "revoked" ? slot.revokeCause ?? "revoked" : cause;
      slot.revokeCause = undefined;
      changed(cause === "revoked" ? "revoked" : "released", { ...who(grant), cause: reason }, grant, reason);
    });
    lease.on("expired", ({ lease: grant }) => changed("expired", who(grant), grant, "expired"));
    lease.on("preempted", ({ previous, lease: grant }) => { granted(grant); changed("preempted", { previous: who(previous), ...who(grant) }, previous, "preempted"); });
    lease.on("transferred", ({ previous, lease: grant }) => { granted(grant); changed("transferred", { previous: who(previous), ...who(grant) }, previous, "transferred"); });
    lease.on("estopped", ({ latch, endedLease }) => changed("estopped", { by: latch.by, reason: latch.reason, endedLeaseId: endedLease?.leaseId }, endedLease, "estopped"));
    lease.on("reset", ({ by }) => changed("reset", { by: this.participants.get(by)?.subject ?? by, sessionId: by }));
  }

  private onLeaseRequest(client: Client, envelope: Envelope) {
    const request = envelope.leaseRequest as tsunagi.v1.LeaseRequest;
    const correlationId = envelope.correlationId;
    const slot = this.slotFor(client, request.deviceId, correlationId);
    if (!slot) return;
    const participant = this.participants.get(client.sessionId);
    if (!participant) return;
    const Action = tsunagi.v1.LeaseRequest.Action;
    const now = Date.now();
    const demotedUntil = this.demotion(participant, now);
    if ((request.action === Action.ACQUIRE || request.action === Action.PREEMPT) && demotedUntil > now) {
      this.reject(client, ErrorCode.LATENCY_BUDGET_EXCEEDED, `demoted for exceeding a device's latency budget; retry in ${Math.ceil((demotedUntil - now) / 1000)} s`, correlationId);
      return;
    }
    let result;
    switch (request.action) {
      case Action.ACQUIRE: result = slot.lease.acquire(client.sessionId, participant.role, now); break;
      case Action.RELEASE: result = slot.lease.release(client.sessionId, now); break;
      case Action.PREEMPT: result = slot.lease.preempt(client.sessionId, participant.role, now); break;
      case Action.TRANSFER: {
        const target = this.participants.get(request.toSessionId);
        if (!target) { this.reject(client, ErrorCode.WRONG_TYPE, `transfer target "${request.toSessionId.slice(0, 64)}" is not in this room`, correlationId); return; }
        if (this.demotion(target, now) > now) { this.reject(client, ErrorCode.LATENCY_BUDGET_EXCEEDED, "the transfer target is demoted for exceeding the latency budget", correlationId); return; }
        result = slot.lease.transfer(client.sessionId, request.toSessionId, target.role, now);
        break;
      }
      default:
        this.reject(client, ErrorCode.WRONG_TYPE, "LeaseRequest.action must be ACQUIRE, RELEASE, TRANSFER or PREEMPT", correlationId);
        return;
    }
    if (result.status === "refused") {
      this.reject(client, leaseErrorCode(result), result.message, correlationId);
      return;
    }
    this.sendEnvelope(client, { correlationId, leaseState: this.leaseState(slot) });
  }

  /** The session is gone: every lease it held ends ("disconnected"), and its devices stop. */
  private releaseAllOf(sessionId: string) {
    for (const slot of this.slots.values()) {
      if (slot.lease.holder?.sessionId === sessionId) slot.lease.holderDisconnected(sessionId);
    }
  }

  private revoke(slot: DeviceSlot, cause: string) {
    slot.revokeCause = cause;
    slot.lease.revoke();
  }

  // --- commands ----------------------------------------------------------------------

  private onCommand(client: Client, envelope: Envelope) {
    const command = envelope.controlCommand as tsunagi.v1.ControlCommand;
    const slot = this.slots.get(command.deviceId);
    if (!slot) { this.reject(client, ErrorCode.DEVICE_UNKNOWN, `no device "${String(command.deviceId).slice(0, 64)}" in room ${this.roomId}`, envelope.correlationId); return; }
    const now = Date.now();
    const refuse = (status: Status, detail: string) => this.ackToClient(client, slot, roomAck(command, status, detail));

    const admitted = this.admit(client, slot, command, now, envelope.correlationId);
    if (!admitted) return;
    if ("status" in admitted) return refuse(admitted.status, admitted.detail);
    const { deadline, profile } = admitted;
    const seq = Number(command.seq);
    if (seq <= slot.lastSeq) return refuse(Status.STALE, `seq ${seq} is not above ${slot.lastSeq}, the last forwarded under this lease`);
    if (!slot.link || !profile) return refuse(Status.DEVICE_OFFLINE, `device ${slot.deviceId} is offline`);
    const problem = axesProblem(command.axes, profile);
    if (problem) return refuse(Status.OUT_OF_BOUNDS, problem);
    slot.lastSeq = seq;
    // Only a command the adapter will apply feeds its watchdog, so only such a command
    // feeds the room's mirror of it (see tick()).
    slot.lastRenewAt = now;
    command.deadlineMs = deadline;
    slot.link.sendCommand(command, (ack) => this.ackToClient(client, slot, ack));
  }

  /**
   * A discrete manoeuvre (arm, take off, land): the command pipeline's checks in the same
   * order (ESTOPPED, NO_LEASE, rate, EXPIRED), then DEVICE_OFFLINE and the profile's
   * actions (OUT_OF_BOUNDS); forwarded, it is answered by the adapter. Every action sent
   * under a lease its sender was granted is recorded in the audit log with its outcome.
   */
  private onAction(client: Client, envelope: Envelope) {
    const action = envelope.deviceAction as tsunagi.v1.DeviceAction;
    const correlationId = envelope.correlationId;
    const slot = this.slotFor(client, action.deviceId, correlationId);
    if (!slot) return;
    const now = Date.now();
    const reply = (result: tsunagi.v1.ActionResult) => {
      const origin = result.origin === tsunagi.v1.CommandAck.Origin.ADAPTER ? "adapter" : "room";
      const status = Status[result.status] ?? String(result.status);
      this.context.metrics.actions.inc({ status, origin });
      const participant = this.participants.get(client.sessionId);
      // Audited under a lease the sender was granted; others' refused attempts are in the metrics only.
      if (slot.grants.get(action.leaseId) === client.sessionId) this.record("action", { deviceId: slot.deviceId, action: action.action.slice(0, 32), value: action.value, leaseId: action.leaseId, sessionId: client.sessionId, subject: participant?.subject, status, origin, detail: result.detail.slice(0, 200) });
      if (!this.participants.has(client.sessionId)) return;
      try { this.sendEnvelope(client, { correlationId, actionResult: result }, TRUSTED); } catch { /* closing */ }
    };
    const refuse = (status: Status, detail: string) => reply(roomActionResult(action, status, detail));
    const admitted = this.admit(client, slot, action, now, correlationId);
    if (!admitted) return;
    if ("status" in admitted) return refuse(admitted.status, admitted.detail);
    const { deadline, profile } = admitted;
    if (!slot.link || !profile) return refuse(Status.DEVICE_OFFLINE, `device ${slot.deviceId} is offline`);
    const problem = actionProblem(action, profile);
    if (problem) return refuse(Status.OUT_OF_BOUNDS, problem);
    slot.lastRenewAt = now;
    action.deadlineMs = deadline;
    slot.link.sendAction(action, reply);
  }

  /**
   * What commands and actions pass first, in the contract's order: ESTOPPED, NO_LEASE
   * (renewing the lease when held), then the device's rate limit, which only the holder
   * draws on (a coded error, undefined returned), then EXPIRED against
   * effectiveDeadlineMs. Answers the deadline in force and the device's profile, or the refusal.
   */
  private admit(client: Client, slot: DeviceSlot, request: { leaseId: string; issuedAtMs: number; deadlineMs: number }, now: number, correlationId: Envelope["correlationId"]):
    { deadline: number; profile: tsunagi.v1.DeviceProfile | undefined } | { status: Status; detail: string } | undefined {
    if (slot.lease.estopped) return { status: Status.ESTOPPED, detail: `device ${slot.deviceId} is e-stopped; a supervisor must reset it` };
    const renewed = slot.lease.renew(client.sessionId, request.leaseId, now);
    if (renewed.status === "refused") return { status: Status.NO_LEASE, detail: renewed.message };
    // The device's allowance is the holder's alone: others are refused above without
    // spending it, so nobody can starve the holder's commands (its stop included).
    if (!this.takeToken(slot, now)) {
      // One coded error a second is enough to back off; one per dropped command would be a flood of our own.
      if (now - slot.rateLimitedAt >= 1000) {
        slot.rateLimitedAt = now;
        this.reject(client, ErrorCode.RATE_LIMITED, `requests to ${slot.deviceId} above its rate; excess dropped`, correlationId);
      } else {
        this.context.metrics.errors.inc({ code: "RATE_LIMITED", source: "teleop" });
      }
      return undefined;
    }
    const profile = slot.link?.profile;
    const budget = latencyBudgetMs(profile, this.context.config.teleop.defaultLatencyBudgetMs);
    const deadline = effectiveDeadlineMs(request, now, budget);
    if (!(now <= deadline)) return { status: Status.EXPIRED, detail: Number.isNaN(deadline) ? "no deadline_ms" : `past its deadline by ${(now - deadline).toFixed(1)} ms` };
    return { deadline, profile };
  }

  private ackToClient(client: Client, slot: DeviceSlot, ack: tsunagi.v1.CommandAck) {
    const origin = ack.origin === tsunagi.v1.CommandAck.Origin.ADAPTER ? "adapter" : "room";
    const statusName = Status[ack.status] ?? String(ack.status);
    this.context.metrics.countCommand(statusName, origin);
    this.count(client, slot, ack, statusName);
    // The adapter refused under the current lease because its own watchdog killed it:
    // end the lease here too, so the operator knows to acquire again.
    if (origin === "adapter" && ack.status === Status.NO_LEASE && slot.lease.holder?.leaseId === ack.leaseId) this.revoke(slot, "watchdog");
    if (!this.participants.has(client.sessionId)) return;
    try { this.sendEnvelope(client, { correlationId: 0, commandAck: ack }, TRUSTED); } catch { /* closing */ }
  }

  private onHeartbeat(client: Client, envelope: Envelope) {
    const heartbeat = envelope.heartbeat as tsunagi.v1.Heartbeat;
    const slot = this.slotFor(client, heartbeat.deviceId, envelope.correlationId);
    if (!slot) return;
    const now = Date.now();
    const renewed = slot.lease.renew(client.sessionId, heartbeat.leaseId, now);
    if (renewed.status === "refused") { this.reject(client, leaseErrorCode(renewed), renewed.message, envelope.correlationId); return; }
    const seq = Number(heartbeat.seq);
    if (seq <= slot.lastHeartbeatSeq) return; // a duplicate or reordered heartbeat proves nothing
    slot.lastHeartbeatSeq = seq;
    slot.lastRenewAt = now;
    slot.link?.sendHeartbeat(heartbeat);
  }

  // --- e-stop and reset --------------------------------------------------------------

  private onEStop(client: Client, envelope: Envelope) {
    const estop = envelope.estop as tsunagi.v1.EStop;
    const participant = this.participants.get(client.sessionId);
    if (!participant || !estopRoles.includes(participant.role)) {
      this.reject(client, ErrorCode.FORBIDDEN, `role "${participant?.role}" may not raise an e-stop (allowed: ${estopRoles.join(", ")})`, envelope.correlationId);
      return;
    }
    // Neither a device nor `all`: stop everything (teleop.proto: when in doubt, stop).
    const targets = estop.deviceId && !estop.all ? [this.slots.get(estop.deviceId)] : [...this.slots.values()];
    if (targets[0] === undefined) { this.reject(client, ErrorCode.DEVICE_UNKNOWN, `no device "${estop.deviceId.slice(0, 64)}" in room ${this.roomId}`, envelope.correlationId); return; }
    const by = `${participant.subject} (${client.sessionId})`;
    const reason = estop.reason?.slice(0, 200) || `e-stop by ${participant.role}`;
    // The sender's clock (synced to ours) says when the button was pressed; keep it when plausible, so
    // the device can tell the whole operator→device latency. Our own time otherwise.
    const now = Date.now();
    const pressedAt = Math.abs(now - (estop.raisedAtMs || 0)) <= PLAUSIBLE_CLOCK_SKEW_MS ? estop.raisedAtMs : now;
    // Every device is told before any is latched: latching one (lease events, broadcasts,
    // audit, logs) must not delay the stop of the next.
    for (const slot of targets as DeviceSlot[]) slot.link?.sendEStop(estopNotice(slot, by, reason, pressedAt));
    for (const slot of targets as DeviceSlot[]) this.latchEStop(slot, by, reason, participant.role, pressedAt, false);
    this.sendEnvelope(client, { correlationId: envelope.correlationId, estop: { deviceId: estop.deviceId, all: estop.all || !estop.deviceId, reason, raisedBy: by, raisedAtMs: estop.raisedAtMs } });
  }

  /** Stops the device first (unless the caller already did), then latches and tells everyone. */
  private latchEStop(slot: DeviceSlot, by: string, reason: string, source: string, raisedAtMs = Date.now(), stopDevice = true) {
    const notice = estopNotice(slot, by, reason, raisedAtMs);
    if (stopDevice) slot.link?.sendEStop(notice);
    this.context.metrics.estops.inc({ source });
    const result = slot.lease.estop(by, reason, Date.now());
    this.broadcastEnvelope({ correlationId: 0, estop: notice });
    if (result.status === "estopped" && !result.alreadyLatched) {
      this.context.logger.warn({ roomId: this.roomId, deviceId: slot.deviceId, by, reason }, `e-stop latched on ${slot.deviceId}`);
    }
  }

  private onReset(client: Client, envelope: Envelope) {
    const reset = envelope.reset as tsunagi.v1.Reset;
    const participant = this.participants.get(client.sessionId);
    if (!participant || (participant.role !== "supervisor" && participant.role !== "admin")) {
      this.reject(client, ErrorCode.FORBIDDEN, `only a supervisor may reset an e-stop (you are ${participant?.role})`, envelope.correlationId);
      return;
    }
    const slot = this.slotFor(client, reset.deviceId, envelope.correlationId);
    if (!slot) return;
    const result = slot.lease.reset(client.sessionId, "supervisor");
    if (result.status === "refused") { this.reject(client, ErrorCode.WRONG_TYPE, result.message, envelope.correlationId); return; }
    const by = `${participant.subject} (${client.sessionId})`;
    const notice = { deviceId: slot.deviceId, by, reason: reset.reason?.slice(0, 200) ?? "" };
    slot.link?.sendReset(notice);
    this.broadcastEnvelope({ correlationId: 0, reset: notice });
    this.sendEnvelope(client, { correlationId: envelope.correlationId, reset: notice });
  }

  // --- timers ------------------------------------------------------------------------

  /** Lease expiry, and the adapter's watchdog mirrored: a holder silent longer than the window loses the lease. */
  private tick() {
    const now = Date.now();
    for (const slot of this.slots.values()) {
      slot.lease.expire(now);
      const holder = slot.lease.holder;
      if (!holder || !slot.link) continue;
      if (now - slot.lastRenewAt > watchdogWindowMs(slot.link.profile) + TICK_MS) this.revoke(slot, "watchdog");
    }
  }

  private fanOutTelemetry() {
    for (const slot of this.slots.values()) {
      if (!slot.telemetry) continue;
      if (slot.frameVersion !== slot.telemetryVersion) {
        slot.telemetryFrame = getMessageBytes.raw(Protocol.ROOM_DATA_BYTES, ENVELOPE_MESSAGE_TYPE, undefined, encodeEnvelope({ correlationId: 0, telemetry: slot.telemetry }, TRUSTED));
        slot.frameVersion = slot.telemetryVersion;
      }
      const frame = slot.telemetryFrame!;
      for (const participant of this.participants.values()) {
        const client = participant.client;
        if (slot.sentVersion.get(client.sessionId) === slot.telemetryVersion) continue;
        // A slow participant skips this frame and gets the newest one later: the oldest is what drops.
        if (clientBufferedAmount(client) > TELEMETRY_BACKPRESSURE_BYTES) { this.context.metrics.teleop.telemetryDropped++; continue; }
        slot.sentVersion.set(client.sessionId, slot.telemetryVersion);
        try { client.enqueueRaw(frame); } catch { /* closing */ }
      }
    }
  }

  /** Measures each holder's round trip; over budget three times running → demoted, device stopped. */
  private probeHolders() {
    const now = Date.now();
    for (const slot of this.slots.values()) {
      const holder = slot.lease.holder;
      const participant = holder && this.participants.get(holder.sessionId);
      if (!holder || !participant || !slot.link) continue;
      const budget = latencyBudgetMs(slot.link.profile, this.context.config.teleop.defaultLatencyBudgetMs);
      if (slot.probe && now - slot.probe.sentAt > budget) {
        // The last probe is still unanswered after a whole budget: that is a strike too.
        this.strike(slot, participant, now - slot.probe.sentAt + slot.link.stats.rttMs, budget);
        if (!slot.lease.holder) continue;
      }
      if (slot.probe && now - slot.probe.sentAt <= budget) continue;
      slot.probe = { correlationId: this.nextProbeId++, sentAt: now };
      try { this.sendEnvelope(participant.client, { correlationId: slot.probe.correlationId, ping: { clientTimeMs: now } }); } catch { /* closing */ }
    }
  }

  private onPong(client: Client, envelope: Envelope) {
    const now = Date.now();
    for (const slot of this.slots.values()) {
      if (slot.probe?.correlationId !== envelope.correlationId || slot.lease.holder?.sessionId !== client.sessionId) continue;
      const operatorRtt = now - slot.probe.sentAt;
      slot.probe = undefined;
      const total = operatorRtt + (slot.link?.stats.rttMs ?? 0);
      const budget = latencyBudgetMs(slot.link?.profile, this.context.config.teleop.defaultLatencyBudgetMs);
      if (total > budget) this.strike(slot, this.participants.get(client.sessionId)!, total, budget);
      else slot.strikes = 0;
      return;
    }
  }

  private strike(slot: DeviceSlot, participant: Participant, rttMs: number, budgetMs: number) {
    slot.probe = undefined;
    if (++slot.strikes < BUDGET_STRIKES) return;
    const demotionMs = this.context.config.teleop.demotionMs;
    if (this.demotedUntil.size >= MAX_DEMOTIONS) this.demotedUntil.delete(this.demotedUntil.keys().next().value as string);
    this.demotedUntil.set(participant.subject, Date.now() + demotionMs);
    const message = `round trip to ${slot.deviceId} is ${rttMs.toFixed(1)} ms, above its ${budgetMs} ms budget: demoted to observer for ${Math.round(demotionMs / 1000)} s and the device stopped`;
    this.reject(participant.client, ErrorCode.LATENCY_BUDGET_EXCEEDED, message, 0);
    this.record("latency.demoted", { deviceId: slot.deviceId, sessionId: participant.client.sessionId, subject: participant.subject, rttMs: Math.round(rttMs * 10) / 10, budgetMs });
    // Demoted to observer: every device this operator drives here stops, not only the one that measured it.
    for (const other of this.slots.values()) {
      if (other.lease.holder?.sessionId === participant.client.sessionId) this.revoke(other, "latency-budget");
    }
  }

  // --- audit -------------------------------------------------------------------------

  /**
   * Adds a command's outcome to its lease's audit summary: only commands sent under a
   * lease the sender was granted. Anyone else's (refused) attempts are in the metrics,
   * so a participant cycling made-up lease ids cannot force an audit write per command.
   */
  private count(client: Client, slot: DeviceSlot, ack: tsunagi.v1.CommandAck, statusName: string) {
    const leaseId = ack.leaseId;
    if (!leaseId || slot.grants.get(leaseId) !== client.sessionId) return;
    let summary = slot.summary;
    if (summary && summary.leaseId !== leaseId) { this.flushSummary(slot); summary = undefined; }
    const now = Date.now();
    const seq = Number(ack.seq);
    summary ??= slot.summary = { leaseId, sessionId: client.sessionId, counts: {}, firstSeq: seq, lastSeq: seq, from: now, to: now };
    summary.counts[statusName] = (summary.counts[statusName] ?? 0) + 1;
    summary.firstSeq = Math.min(summary.firstSeq, seq);
    summary.lastSeq = Math.max(summary.lastSeq, seq);
    summary.to = now;
  }

  private flushSummary(slot: DeviceSlot) {
    const summary = slot.summary;
    if (!summary) return;
    slot.summary = undefined;
    this.record("commands.summary", { deviceId: slot.deviceId, ...summary });
  }

  private flushSummaries() {
    for (const slot of this.slots.values()) this.flushSummary(slot);
  }

  private record(type: string, data: Record<string, unknown>) {
    this.audit.append(type, data).catch((error) => {
      this.context.metrics.errors.inc({ code: "AUDIT_WRITE_FAILED", source: "teleop" });
      this.context.logger.error({ err: error, roomId: this.roomId, type }, "audit append failed");
    });
  }

  // --- helpers -----------------------------------------------------------------------

  /** Until when this participant's identity is demoted (0: not demoted); forgets lapsed demotions. */
  private demotion(participant: Participant, now: number): number {
    const until = this.demotedUntil.get(participant.subject) ?? 0;
    if (until !== 0 && until <= now) this.demotedUntil.delete(participant.subject);
    return until;
  }

  private greet(client: Client) {
    for (const slot of this.slots.values()) {
      if (slot.link?.profile) this.sendEnvelope(client, { correlationId: 0, deviceProfile: slot.link.profile });
      this.sendEnvelope(client, { correlationId: 0, leaseState: this.leaseState(slot) });
    }
  }

  private slotFor(client: Client, deviceId: string, correlationId: Envelope["correlationId"]): DeviceSlot | undefined {
    const slot = this.slots.get(deviceId);
    if (!slot) this.reject(client, ErrorCode.DEVICE_UNKNOWN, `no device "${String(deviceId).slice(0, 64)}" in room ${this.roomId}`, correlationId);
    return slot;
  }

  private leaseState(slot: DeviceSlot, ended?: LeaseGrant, cause?: string): tsunagi.v1.ILeaseState {
    const holder = slot.lease.holder;
    return {
      deviceId: slot.deviceId,
      leaseId: holder?.leaseId ?? "",
      holderSessionId: holder?.sessionId ?? "",
      holderRole: holder?.role ?? "",
      expiresAtMs: holder?.expiresAt ?? 0,
      ttlMs: slot.lease.ttlMs,
      estopped: slot.lease.estopped,
      endedLeaseId: ended?.leaseId ?? "",
      cause: cause ?? "",
      online: slot.link?.online ?? false,
    };
  }

  private broadcastLeaseState(slot: DeviceSlot) {
    this.broadcastEnvelope({ correlationId: 0, leaseState: this.leaseState(slot) });
  }

  private broadcastEnvelope(envelope: tsunagi.v1.IEnvelope) {
    this.broadcastBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope(envelope, TRUSTED), {});
  }

  /** Command rate limit: a bucket of twice the device's control rate (at least 100/s). */
  private takeToken(slot: DeviceSlot, now: number): boolean {
    const rate = commandBurst(slot.link?.profile);
    slot.tokens = Math.min(rate, slot.tokens + ((now - slot.tokensAt) * rate) / 1000);
    slot.tokensAt = now;
    if (slot.tokens < 1) return false;
    slot.tokens -= 1;
    return true;
  }
}

/** Devices owned by a room on this node: a device answers to one room. */
/** The EStop a device and the participants are sent. */
function estopNotice(slot: DeviceSlot, raisedBy: string, reason: string, raisedAtMs: number): tsunagi.v1.IEStop {
  return { deviceId: slot.deviceId, reason, raisedBy, raisedAtMs };
}

const deviceOwners = new Map<string, string>();

function parseDevices(devices: unknown): string[] {
  if (!Array.isArray(devices) || devices.length === 0 || devices.length > MAX_DEVICES) {
    throw new ServerError(ErrorCode.WRONG_TYPE, `devices must be a list of 1 to ${MAX_DEVICES} device ids`);
  }
  for (const id of devices) {
    if (!isDeviceId(id)) throw new ServerError(ErrorCode.WRONG_TYPE, `device id ${JSON.stringify(id)?.slice(0, 80)} must match ${DEVICE_ID_TEXT}`);
  }
  if (new Set(devices).size !== devices.length) throw new ServerError(ErrorCode.WRONG_TYPE, "a device is listed twice");
  return devices as string[];
}

function latencyBudgetMs(profile: tsunagi.v1.IDeviceProfile | undefined, fallback: number): number {
  return profile?.latencyBudgetMs || fallback;
}

/** Requests per second (and burst) a device's commands and actions may arrive at: twice its control rate, at least 100. */
function commandBurst(profile: tsunagi.v1.IDeviceProfile | undefined): number {
  return Math.max(100, 2 * (profile?.controlRateHz || 0));
}

/** The coded error for a refused lease operation. */
function leaseErrorCode(refused: LeaseRefused): number {
  switch (refused.reason) {
    case "HELD_BY_OTHER": return ErrorCode.LEASE_HELD;
    case "NOT_HOLDER": case "EXPIRED": case "LEASE_ENDED": case "UNKNOWN_LEASE": return ErrorCode.LEASE_NOT_HELD;
    case "ESTOPPED": return ErrorCode.ESTOPPED;
    case "NOT_SUPERVISOR": case "ROLE_NOT_ALLOWED": return ErrorCode.FORBIDDEN;
    case "INVALID_TARGET": case "NOT_ESTOPPED": return ErrorCode.WRONG_TYPE;
    case "CLOSED": return ErrorCode.NODE_DRAINING;
  }
}

