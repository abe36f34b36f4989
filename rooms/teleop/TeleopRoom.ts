import type { Client } from "@colyseus/core";
import { ErrorCode, encodeEnvelope, ENVELOPE_MESSAGE_TYPE, TRUSTED, tsunagi } from "../../proto/index.ts";
import { tokenAuth, ClusterRoom } from "../shared/ClusterRoom.ts";
import { envelopeFrame } from "../../server/colyseus/envelopeFrame.ts";
import { PeriodicTasks } from "../shared/PeriodicTasks.ts";
import { nodeContext, type NodeContext } from "../../server/context.ts";
import type { TokenClaims } from "../../server/auth/tokens.ts";
import type { RoomAccess } from "../../server/auth/roomAccess.ts";
import type { DeviceLink } from "../../server/gateway/DeviceLink.ts";
import { requestDevice } from "../../server/gateway/DeviceRequests.ts";
import { ControlLease, leaseErrorCode } from "./ControlLease.ts";
import { answerLeaseRequest, type LeaseParty } from "./LeaseRequests.ts";
import { announceLeaseChanges } from "./LeaseAnnouncements.ts";
import { DeviceSlot } from "./DeviceSlot.ts";
import { CommandPipeline } from "./CommandPipeline.ts";
import { CommandRelay } from "./CommandRelay.ts";
import { LatencyBudget, type BudgetHolder, type Demotion } from "./LatencyBudget.ts";
import { DeviceClaims, parseDeviceList } from "./DeviceClaims.ts";
import { CommandAudit } from "./CommandAudit.ts";
import { notStoredBeyondNode } from "../shared/notStored.ts";
import { EmergencyStop, type EStopOutcome, type EStopSender } from "./EmergencyStop.ts";
import { Participants } from "./Participants.ts";
import { TeleopMigration } from "./TeleopMigration.ts";
import { LeaseChecks } from "./LeaseChecks.ts";
import type { MigratableRoom } from "../shared/MigratableRoom.ts";
import { restoreOf } from "../../server/handoff/restore.ts";
import { TeleopMedia } from "./TeleopMedia.ts";
import { SiteSensors, SITE_SENSORS_FLUSH_MS, parseSiteHall } from "./SiteSensors.ts";

type Envelope = tsunagi.v1.Envelope;

/**
 * Any of the room's roles may join. Only a supervisor (or admin) may open one: its
 * `devices` bind real machines to the room, so naming them is a site decision; a scoped
 * supervisor names only its own site's room and machines (`device:<id>` in its scope).
 */
const access: RoomAccess = { join: ["operator", "supervisor", "visitor", "host"], create: ["supervisor"], name: ["supervisor"] };
/** How often a room asks the region's other nodes for its devices not connected here. */
const DEVICE_REQUEST_MS = 2000;

export interface TeleopRoomOptions {
  roomId?: string;
  /** The devices of this room, by enrolled id. */
  devices: string[];
  /** The expo hall this site's sensors stand in (SiteSensors); absent: none. */
  hall?: string;
}

/**
 * A teleoperation room: one or more devices, and participants who watch (visitors,
 * hosts), drive (operators) or oversee (supervisors). Everything travels as Envelopes in
 * the "pb" message (teleop.proto, "Operator channel"). The room composes its pieces:
 * - DeviceSlot: each device, its link, lease (ControlLease) and telemetry;
 * - CommandPipeline: every command and action admitted in the contract's order, else
 *   acked by the room (origin ROOM); CommandRelay forwards the admitted ones, and relays
 *   the adapter's ack with the room↔adapter round trip added;
 * - EmergencyStop: devices stop before anything else happens, then latch until a
 *   supervisor resets; a latched device gets the e-stop again when its adapter reconnects;
 * - LatencyBudget: holders too slow for a device's budget are demoted to observer;
 * - DeviceClaims: one room per machine in the cluster; CommandAudit: the audit log;
 * - Participants: who is in the room, and delivery to them; LeaseRequests: a
 *   participant's LeaseRequest decided against the device's lease.
 *
 * A lease ends when its holder disconnects, lets it lapse, goes silent longer than the
 * device's watchdog window, or when the device goes offline; the adapter is told at once
 * (LeaseState with no lease) and zeroes motion (DESIGN.md, "Teleoperation safety model").
 *
 * @example
 *   // server side (the demo does this)
 *   await matchMaker.createRoom("teleop", { roomId: "site-1", devices: ["excavator-1", "drone-1"] });
 *   // client side: see client-sdk/OperatorControls.ts
 */
export class TeleopRoom extends ClusterRoom<TeleopRoomOptions> {
  maxClients = 64;
  /** The room's devices by id, in the order they were given. */
  private readonly slots = new Map<string, DeviceSlot>();
  /** Who is in the room, and delivery to them. */
  private readonly participants = new Participants({
    send: (client, envelope, options) => this.sendEnvelope(client, envelope, options),
    sendFailed: (error, sessionId) => this.context.logger.debug({ err: error, roomId: this.roomId, sessionId }, "send to a closing participant failed"),
    telemetryDropped: () => { this.context.metrics.teleop.telemetryDropped++; },
  });
  /** The node's services; set once the devices are claimed (a refused room never has it). */
  private context!: NodeContext;
  /** The audit's periodic work, stopped on dispose. */
  private readonly timers = new PeriodicTasks();
  /** The room's checks, probes and fan-out (startChecks), stopped while it moves. */
  private checks?: PeriodicTasks;
  /** Lease expiry and the silent-holder watchdog (LeaseChecks.ts). */
  private leaseChecks?: LeaseChecks;
  /** Stops listening for adapters attaching to the node's gateway. */
  private detachGateway?: () => void;
  /** The room's hold on its devices; undefined until all are claimed, so a refused room releases nothing. */
  private claims: DeviceClaims | undefined;
  /** Commands and actions: admitted, forwarded, answered. */
  private relay!: CommandRelay;
  /** Holders' round trips against the devices' budgets, and who is demoted. */
  private latency!: LatencyBudget;
  /** The room's audit records and command summaries. */
  private audit!: CommandAudit;
  /** Raising and resetting e-stops. */
  private estops!: EmergencyStop;
  /** Voice, and the machines' cameras (TeleopMedia). */
  private media?: TeleopMedia;
  /** Area alerts and beacons of the room's sensors devices. */
  private sensors?: SiteSensors;
  /** The room's devices, in the order they were given. */
  private deviceIds: string[] = [];
  /** The LeaseState the last lease change announced, for the reply to the LeaseRequest that made it. */
  private lastLeaseChange: tsunagi.v1.ILeaseState | undefined;

  static access = access;
  static onAuth = tokenAuth(access);

  async onCreate(options: TeleopRoomOptions & { roomId?: unknown }) {
    const devices = parseDeviceList(options?.devices);
    const hallId = parseSiteHall(options?.hall);
    this.deviceIds = devices;
    // A site's room outlives its participants: its machines stay bound to it (stopped,
    // with no lease) until the node stops, so the next operator finds them there.
    this.autoDispose = false;
    const context = nodeContext();
    await super.onCreate(options); // claims the room id (and sets it), unless it is opened from a snapshot
    // On a refusal Colyseus discards the room, which releases the room id again.
    const claims = new DeviceClaims({
      owner: { roomId: this.roomId, regionId: context.regionId, nodeId: context.nodeId, gatewayUrl: context.gatewayUrl, certGatewayUrl: context.certGatewayUrl },
      directory: context.directory, request: (wanted) => requestDevice(this.presence, context.config.clusterName, wanted),
      releaseFailed: (error, deviceId) => context.logger.warn({ err: error, deviceId, roomId: this.roomId },
        `device ${deviceId}: releasing its claim failed; another room may take it over once this node leaves the registry`),
    });
    // A room moving here claims its devices at the Switch (TeleopMigration), not before.
    const restoring = restoreOf(options) !== undefined;
    if (restoring) this.migration.expectSwitch();
    else await claims.claim(devices);
    this.claims = claims;
    this.context = context;
    const teleop = context.config.teleop;
    this.audit = new CommandAudit({
      sink: context.audit(this.name), now: Date.now, every: (periodMs, task) => this.timers.every(periodMs, task),
      onAppendFailed: (error, type) => {
        context.metrics.errors.inc({ code: "AUDIT_WRITE_FAILED", source: "teleop" });
        context.logger.error({ err: error, roomId: this.roomId, type }, "audit append failed");
      },
    });
    this.latency = new LatencyBudget(devices, {
      now: Date.now, defaultBudgetMs: teleop.defaultLatencyBudgetMs, demotionMs: teleop.demotionMs,
      holder: (deviceId) => this.budgetHolder(deviceId),
      ping: (sessionId, correlationId, now) => {
        const client = this.participants.get(sessionId)?.client;
        if (client) this.participants.send(client, { correlationId, ping: { clientTimeMs: now } });
      },
      demoted: (demotion) => this.demote(demotion),
    });
    this.estops = new EmergencyStop({
      slots: this.slots, now: Date.now, broadcast: (envelope, except) => this.broadcastEnvelope(envelope, except), roomId: this.roomId,
      tell: (sessionId, code, message) => { const client = this.participants.get(sessionId)?.client; if (client) this.reject(client, code, message, 0); },
      latched: (deviceId, { by, reason, source, first }) => {
        context.metrics.estops.inc({ source });
        if (first) context.logger.warn({ roomId: this.roomId, deviceId, by, reason }, `e-stop latched on ${deviceId}`);
      },
    });
    const pipeline = new CommandPipeline({ now: Date.now, budgetMs: (profile) => this.latency.budgetFor(profile) });
    this.relay = new CommandRelay({ pipeline, participants: this.participants, audit: this.audit, metrics: context.metrics,
      reject: (client, code, message, correlationId) => this.reject(client, code, message, correlationId) });
    for (const deviceId of devices) {
      const lease = new ControlLease({
        deviceId, ttlMs: teleop.leaseTtlMs,
        onListenerError: (error) => context.logger.error({ err: error, roomId: this.roomId }, "lease listener failed"),
      });
      const slot = new DeviceSlot({ deviceId, lease });
      this.slots.set(deviceId, slot);
      announceLeaseChanges(slot, {
        metrics: context.metrics, audit: this.audit, latency: this.latency,
        subjectOf: (sessionId) => this.participants.get(sessionId)?.subject,
        broadcast: (state) => { this.lastLeaseChange = state; this.broadcastEnvelope({ correlationId: 0, leaseState: state }); },
      });
      const link = context.gateway.link(deviceId);
      if (link) this.attach(slot, link);
    }
    this.detachGateway = context.gateway.onAttach((link) => {
      const slot = this.slots.get(link.deviceId);
      if (slot) this.attach(slot, link);
    });

    this.onEnvelope("leaseRequest", (client, envelope) => this.onLeaseRequest(client, envelope));
    this.onEnvelope("controlCommand", (client, envelope) => {
      const slot = this.slotFor(client, envelope.controlCommand!.deviceId!, envelope.correlationId);
      if (slot) this.relay.command(client, slot, envelope);
    });
    this.onEnvelope("deviceAction", (client, envelope) => {
      const slot = this.slotFor(client, envelope.deviceAction!.deviceId!, envelope.correlationId);
      if (slot) this.relay.action(client, slot, envelope);
    });
    this.onEnvelope("heartbeat", (client, envelope) => this.onHeartbeat(client, envelope));
    this.onEnvelope("estop", (client, envelope) => this.onEStop(client, envelope));
    this.onEnvelope("reset", (client, envelope) => this.onReset(client, envelope));
    this.onEnvelope("clockSyncPing", (client, envelope) => {
      const t1 = Date.now();
      this.sendEnvelope(client, { correlationId: envelope.correlationId, clockSyncPong: { t0Ms: envelope.clockSyncPing!.t0Ms, t1Ms: t1, t2Ms: Date.now() } });
    });
    this.onEnvelope("pong", (client, envelope) => this.latency.answer(client.sessionId, Number(envelope.correlationId)));
    this.media = new TeleopMedia({
      roomId: this.roomId, devices, roles: access.join, context, present: (sessionId) => this.participants.has(sessionId), moving: () => this.mover.moving,
      link: (deviceId) => this.slots.get(deviceId)?.link, send: (client, envelope) => this.sendEnvelope(client, envelope),
      reject: (client, code, message, correlationId) => this.reject(client, code, message, correlationId),
    });
    this.media.register((kind, handler) => this.onEnvelope(kind, handler));
    this.sensors = new SiteSensors({ roomId: this.roomId, hallId, presence: this.presence, broadcast: (envelope) => this.broadcastEnvelope(envelope), logger: context.logger });

    this.startChecks();
    if (!restoring) this.audit.record("room.opened", { devices });
    context.logger.info({ roomId: this.roomId, devices }, `teleop room ${this.roomId} opened with ${devices.join(", ")}`);
  }

  /**
   * The room's periodic work, each at its own phase (rooms opened together must not fan
   * out, probe or summarise in one burst): lease checks (one node-wide timer runs every
   * room's: a few microseconds each), telemetry, RTT probes, and asking the region's
   * other nodes for devices connected there (DeviceRequests). Stopped while the room moves.
   */
  private startChecks() {
    const { logger, config: { teleop } } = this.context;
    this.leaseChecks ??= new LeaseChecks({ slots: this.slots, skip: (slot) => this.migration.holderOnItsWay(slot), logger, roomId: this.roomId });
    this.leaseChecks.start();
    const checks = this.checks = new PeriodicTasks();
    checks.every(Math.max(10, Math.round(1000 / teleop.telemetryHz)), () => this.participants.fanOutTelemetry(this.slots.values(), telemetryFrame));
    checks.every(teleop.rttProbeMs, () => this.latency.probeHolders());
    checks.every(DEVICE_REQUEST_MS, () => { this.requestMissingDevices(); this.media?.cameras.check(); });
    checks.every(SITE_SENSORS_FLUSH_MS, () => this.sensors?.flush());
    this.requestMissingDevices();
  }

  private stopChecks() {
    this.leaseChecks?.stop();
    this.checks?.stop();
  }

  // --- MigratableRoom (TeleopMigration.ts) ---------------------------------------------

  private readonly migration = new TeleopMigration({
    slots: this.slots, participants: this.participants,
    pause: () => this.stopChecks(),
    resume: () => this.startChecks(),
    claimDevices: async () => {
      await this.claims!.claim(this.deviceIds);
      for (const slot of this.slots.values()) {
        const link = this.context.gateway.link(slot.deviceId);
        if (link && !slot.link) this.attach(slot, link);
      }
    },
    parked: (sessionId) => this.mover.migration.parked.has(sessionId),
    forgetClaims: () => { this.claims?.forget(); this.claims = undefined; },
    context: () => this.context,
    greet: (client) => this.greet(client),
    dropSession: (sessionId) => this.onLeave({ sessionId } as Client),
    audit: (type, data) => this.audit.record(type, data),
  });
  protected override migratableRoom(): MigratableRoom { return this.migration; }

  protected listingMetadata() {
    return { devices: this.deviceIds };
  }

  onJoin(client: Client, options?: unknown, auth?: TokenClaims) {
    super.onJoin(client, options, auth);
    this.participants.joined(client, auth?.role ?? "visitor", auth?.sub ?? client.sessionId);
    this.greet(client);
  }

  onReconnect(client: Client) {
    this.participants.reconnected(client);
    this.greet(client);
  }

  onDrop(client: Client, code?: number) {
    // A dropped operator connection ends the lease at once (DESIGN.md): the device stops.
    this.releaseAllOf(client.sessionId);
    super.onDrop(client, code);
  }

  onLeave(client: Client) {
    this.releaseAllOf(client.sessionId);
    this.participants.left(client.sessionId);
    this.media?.left(client.sessionId);
    for (const slot of this.slots.values()) slot.forget(client.sessionId);
  }

  onDispose() {
    // Also called for a room whose onCreate refused (Colyseus discards it): release only
    // what this room claimed, and touch nothing that onCreate did not set up.
    const claims = this.claims;
    this.claims = undefined;
    if (claims) void claims.release();
    this.stopChecks();
    this.timers.stop();
    this.media?.close();
    if (!this.context) return;
    this.detachGateway?.();
    this.audit.flush();
    for (const slot of this.slots.values()) {
      slot.lease.close();
      slot.link?.sendLeaseState({ deviceId: slot.deviceId, leaseId: "", online: true, cause: "closed" });
      slot.detach();
    }
    this.audit.record("room.closed", {});
  }

  // --- devices -----------------------------------------------------------------------

  private attach(slot: DeviceSlot, link: DeviceLink) {
    if (this.migration.awaitingSwitch) return; // a room moving here takes its links at the Switch
    slot.attach(link, {
      onProfile: (profile) => {
        this.broadcastEnvelope({ correlationId: 0, deviceProfile: profile });
        slot.resetAllowance(profile);
      },
      // No profile to check commands against (they are refused DEVICE_OFFLINE): when in doubt, stop.
      onProfileRefused: () => { if (slot.lease.holder) slot.revoke("profile-refused"); },
      onTelemetry: (telemetry) => { slot.newTelemetry(telemetry); this.sensors?.telemetry(slot.deviceId, link.profile?.deviceClass, telemetry); },
      onDeviceEStop: (estop) => this.estops.deviceRaised(slot, estop),
      onDeviceError: (error) => this.estops.deviceRefusedReset(slot, error),
      onClosed: (reason) => {
        if (!slot.linkClosed(link)) return;
        this.context.logger.warn({ roomId: this.roomId, deviceId: slot.deviceId, reason }, `device ${slot.deviceId} went offline`);
        if (slot.lease.holder) slot.revoke("device-offline");
        else this.broadcastLeaseState(slot);
        this.audit.record("device.offline", { deviceId: slot.deviceId, reason });
      },
    });
    // The device starts from "no lease" (unless the lease came with the room: see
    // TeleopMigration.attaching); a latched e-stop is re-raised so an adapter that
    // restarted latches again.
    const lease = this.migration.attaching(slot);
    if (lease === "revoke" && slot.lease.holder) slot.revoke("device-offline");
    const latch = slot.lease.estopLatch;
    if (latch) link.sendEStop({ deviceId: slot.deviceId, reason: `latched: ${latch.reason}`, raisedBy: latch.by, raisedAtMs: latch.at });
    link.sendLeaseState(lease === "hold" ? { deviceId: slot.deviceId, leaseId: "", online: true, cause: "moving" } : slot.leaseState());
    this.broadcastLeaseState(slot);
    this.audit.record("device.online", { deviceId: slot.deviceId, adapterVersion: link.adapterVersion, driver: link.driver });
    this.media?.cameras.attached(slot.deviceId);
  }

  private requestMissingDevices() {
    const missing = [...this.slots.values()].filter((slot) => !slot.link?.online).map((slot) => slot.deviceId);
    this.claims?.requestMissing(missing);
  }

  // --- lease -------------------------------------------------------------------------

  private onLeaseRequest(client: Client, envelope: Envelope) {
    const request = envelope.leaseRequest as tsunagi.v1.LeaseRequest;
    const slot = this.slotFor(client, request.deviceId, envelope.correlationId);
    const sender = slot && this.leaseParty(client.sessionId);
    if (!slot || !sender) return;
    this.lastLeaseChange = undefined;
    const outcome = answerLeaseRequest(slot.lease, request, sender, this.leaseParty(request.toSessionId), Date.now());
    // The reply is the change as announced (a RELEASE's with the lease it ended and why), or the state when nothing changed.
    if ("refused" in outcome) this.reject(client, outcome.refused.code, outcome.refused.message, envelope.correlationId);
    else this.acknowledge(client, envelope.correlationId, "the lease request took effect", { correlationId: envelope.correlationId, leaseState: this.lastLeaseChange ?? slot.leaseState() });
  }

  /**
   * Sends `reply`, which acknowledges an audited event, once its audit entry is stored
   * beyond this node (CommandAudit.stored); if it is not, a REGION_UNAVAILABLE saying that
   * `done` here all the same. The event itself (the lease, the e-stop) took effect at
   * once: only its acknowledgement waits. `isNotice`: the reply is the sender's copy of
   * a notice everyone else got (an e-stop, a reset), so it still goes, uncorrelated,
   * before the error.
   */
  private acknowledge(client: Client, correlationId: Envelope["correlationId"], done: string, reply: tsunagi.v1.IEnvelope, isNotice = false) {
    const present = () => this.participants.get(client.sessionId) !== undefined;
    this.audit.stored().then(
      () => { if (present()) this.sendEnvelope(client, reply); },
      (error: unknown) => {
        this.context.logger.error({ err: error, roomId: this.roomId }, `${done}, but its audit entry is not stored beyond this node yet`);
        if (!present()) return;
        if (isNotice) this.sendEnvelope(client, { ...reply, correlationId: 0 });
        this.reject(client, ErrorCode.REGION_UNAVAILABLE, notStoredBeyondNode(done, "its audit entry"), correlationId);
      },
    );
  }

  /** A participant as the lease rules see them, demotion included; undefined for a session not in the room. */
  private leaseParty(sessionId: string): LeaseParty | undefined {
    const participant = this.participants.get(sessionId);
    return participant && { sessionId, role: participant.role, demotedMs: this.latency.demotionLeftMs(participant.subject) };
  }

  /** The session is gone: every lease it held ends ("disconnected"), and its devices stop. */
  private releaseAllOf(sessionId: string) {
    for (const slot of this.slots.values()) {
      if (slot.lease.holder?.sessionId === sessionId) slot.lease.holderDisconnected(sessionId);
    }
  }

  /** The device's lease holder as the latency budget sees them; undefined when free or the holder left. */
  private budgetHolder(deviceId: string): BudgetHolder | undefined {
    const slot = this.slots.get(deviceId);
    const holder = slot?.lease.holder;
    const participant = holder && this.participants.get(holder.sessionId);
    if (!slot || !holder || !participant) return undefined;
    const link = slot.link;
    return { sessionId: holder.sessionId, subject: participant.subject, online: link !== undefined, deviceRttMs: link?.stats.rttMs ?? 0, profile: link?.profile };
  }

  /** Demoted to observer: told why, recorded, and every device they drive here stops, not only the one that measured it. */
  private demote(demotion: Demotion) {
    const participant = this.participants.get(demotion.sessionId);
    if (participant) this.reject(participant.client, ErrorCode.LATENCY_BUDGET_EXCEEDED, demotion.message, 0);
    const { deviceId, sessionId, subject, rttMs, budgetMs } = demotion;
    this.audit.record("latency.demoted", { deviceId, sessionId, subject, rttMs: Math.round(rttMs * 10) / 10, budgetMs });
    for (const slot of this.slots.values()) {
      if (slot.lease.holder?.sessionId === sessionId) slot.revoke("latency-budget");
    }
  }

  // --- heartbeats ----------------------------------------------------------------------

  private onHeartbeat(client: Client, envelope: Envelope) {
    const heartbeat = envelope.heartbeat as tsunagi.v1.Heartbeat;
    const slot = this.slotFor(client, heartbeat.deviceId, envelope.correlationId);
    if (!slot) return;
    const now = Date.now();
    const renewed = slot.lease.renew(client.sessionId, heartbeat.leaseId, now);
    if (renewed.status === "refused") { this.reject(client, leaseErrorCode(renewed), renewed.message, envelope.correlationId); return; }
    if (!slot.acceptHeartbeat(Number(heartbeat.seq), now)) return; // a duplicate or reordered heartbeat proves nothing
    slot.link?.sendHeartbeat(heartbeat);
  }

  // --- e-stop and reset --------------------------------------------------------------

  private onEStop(client: Client, envelope: Envelope) {
    this.answer(client, envelope, this.estops.raise(this.sender(client), envelope.estop as tsunagi.v1.EStop), (estop) => ({ estop }));
  }

  private onReset(client: Client, envelope: Envelope) {
    this.answer(client, envelope, this.estops.reset(this.sender(client), envelope.reset as tsunagi.v1.Reset), (reset) => ({ reset }));
  }

  /** Replies to a request with its outcome's notice, or its coded refusal. */
  private answer<Notice>(client: Client, request: Envelope, outcome: EStopOutcome<Notice>, body: (notice: Notice) => tsunagi.v1.IEnvelope) {
    if ("refused" in outcome) this.reject(client, outcome.refused.code, outcome.refused.message, request.correlationId);
    else this.acknowledge(client, request.correlationId, request.estop ? "the e-stop is applied and latched" : "the reset took effect", { correlationId: request.correlationId, ...body(outcome.reply) }, true);
  }

  /** A participant as the e-stop sees them; undefined for a session that is not (or no longer) in the room. */
  private sender(client: Client): EStopSender | undefined {
    const participant = this.participants.get(client.sessionId);
    return participant && { sessionId: client.sessionId, role: participant.role, subject: participant.subject };
  }

  // --- helpers -----------------------------------------------------------------------

  private greet(client: Client) {
    for (const slot of this.slots.values()) {
      if (slot.link?.profile) this.sendEnvelope(client, { correlationId: 0, deviceProfile: slot.link.profile });
      this.sendEnvelope(client, { correlationId: 0, leaseState: slot.leaseState() });
    }
  }

  private slotFor(client: Client, deviceId: string, correlationId: Envelope["correlationId"]): DeviceSlot | undefined {
    const slot = this.slots.get(deviceId);
    if (!slot) this.reject(client, ErrorCode.DEVICE_UNKNOWN, `no device "${String(deviceId).slice(0, 64)}" in room ${this.roomId}`, correlationId);
    return slot;
  }

  private broadcastLeaseState(slot: DeviceSlot) {
    this.broadcastEnvelope({ correlationId: 0, leaseState: slot.leaseState() });
  }

  /** To every participant but `exceptSessionId` (a sender that gets its reply instead). */
  private broadcastEnvelope(envelope: tsunagi.v1.IEnvelope, exceptSessionId?: string) {
    const except = exceptSessionId === undefined ? undefined : this.participants.get(exceptSessionId)?.client;
    this.broadcastBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope(envelope, TRUSTED), except ? { except } : {});
  }
}

/** A device's telemetry as one whole Colyseus frame, the same bytes for every participant. */
function telemetryFrame(telemetry: tsunagi.v1.Telemetry): Uint8Array {
  return envelopeFrame({ correlationId: 0, telemetry }, TRUSTED);
}
