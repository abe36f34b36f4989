/**
 * A small scripted stand-in for a TeleopRoom, for the SDK's OperatorControls tests: a
 * real Colyseus server (ws transport, 127.0.0.1, ephemeral port) hosting one room type
 * that speaks the operator channel of teleop.proto the way the TeleopRoom does, minus
 * everything that needs a gateway, Redis or an adapter:
 *
 * - greets each participant with every device's DeviceProfile and LeaseState;
 * - LeaseRequest → LeaseState broadcast (cause set), then the reply; or a coded Error
 *   (LEASE_HELD, LEASE_NOT_HELD, FORBIDDEN, ESTOPPED, DEVICE_UNKNOWN);
 * - ControlCommand → a CommandAck to the sender: NO_LEASE under a lease the sender does
 *   not hold, otherwise `ackStatus` (APPLIED) with fixed device_round_trip_ms and
 *   one_way_latency_ms measured on the room's clock;
 * - EStop (refused FORBIDDEN for visitors) and Reset (supervisors only) as the room
 *   does: broadcast notice, LeaseState, reply echoing the correlation id;
 * - ClockSyncPing → ClockSyncPong on the room's clock, which runs `clockSkewMs` ahead
 *   of Date.now() so tests can tell server times from local ones.
 *
 * Roles come from the join options ({ role: "operator" }), there is no token. Every
 * envelope a participant sent is kept in `received`; tests script the rest (ping(),
 * telemetry(), demote()) and read the room through ScriptedTeleopRoom.byId.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Room, Server, type Client } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { ErrorCode, ENVELOPE_MESSAGE_TYPE, decodeEnvelope, encodeEnvelope, errorEnvelope, tsunagi, type Envelope, type IEnvelope } from "../../../proto/index.ts";

const Status = tsunagi.v1.CommandAck.Status;
const Action = tsunagi.v1.LeaseRequest.Action;

/** An excavator profile as sim-excavator publishes it (velocity joints and tracks). */
export function excavatorProfile(deviceId: string, overrides: Partial<tsunagi.v1.IDeviceProfile> = {}): tsunagi.v1.IDeviceProfile {
  const velocity = tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY;
  return {
    deviceId, deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_EXCAVATOR, driver: "sim-excavator",
    axes: [
      { name: "swing", mode: velocity, unit: "rad", rateUnit: "rad/s", maxRate: 1.0 },
      { name: "boom", mode: velocity, unit: "rad", min: -0.6, max: 1.0, rateUnit: "rad/s", maxRate: 0.4 },
      { name: "arm", mode: velocity, unit: "rad", min: -2.6, max: -0.5, rateUnit: "rad/s", maxRate: 0.6 },
      { name: "bucket", mode: velocity, unit: "rad", min: -2.0, max: 1.2, rateUnit: "rad/s", maxRate: 1.0 },
      { name: "left-track", mode: velocity, unit: "m", rateUnit: "m/s", maxRate: 1.5 },
      { name: "right-track", mode: velocity, unit: "m", rateUnit: "m/s", maxRate: 1.5 },
    ],
    watchdogWindowMs: 200, latencyBudgetMs: 50, telemetryRateHz: 10, controlRateHz: 100,
    ...overrides,
  };
}

/** A drone profile as sim-drone publishes it. */
export function droneProfile(deviceId: string): tsunagi.v1.IDeviceProfile {
  const velocity = tsunagi.v1.AxisMode.AXIS_MODE_VELOCITY;
  return {
    deviceId, deviceClass: tsunagi.v1.DeviceClass.DEVICE_CLASS_DRONE, driver: "sim-drone",
    axes: [
      { name: "vx", mode: velocity, unit: "m", rateUnit: "m/s", maxRate: 5 },
      { name: "vy", mode: velocity, unit: "m", rateUnit: "m/s", maxRate: 5 },
      { name: "vz", mode: velocity, unit: "m", min: 0, max: 120, rateUnit: "m/s", maxRate: 2 },
      { name: "yaw-rate", mode: velocity, unit: "rad", rateUnit: "rad/s", maxRate: 1.5 },
    ],
    watchdogWindowMs: 200, latencyBudgetMs: 50, telemetryRateHz: 10, controlRateHz: 100,
  };
}

export interface ScriptedRoomOptions {
  /** The devices of the room, with their profiles. */
  profiles: tsunagi.v1.IDeviceProfile[];
  /** How far the room's clock runs ahead of Date.now(), ms. Default 0. */
  clockSkewMs?: number;
  /** LeaseState.ttl_ms. Default 1000. */
  ttlMs?: number;
}

/** One envelope a participant sent, with who sent it and when (room clock). */
export interface Received {
  sessionId: string;
  envelope: Envelope;
  at: number;
}

interface Lease {
  leaseId: string;
  holder: string;
  role: string;
  /** Room clock; fixed at the grant, as the TeleopRoom's (renewals are not announced). */
  expiresAt: number;
}

let leaseCounter = 0;

export class ScriptedTeleopRoom extends Room {
  /** Rooms by id, so tests can script the room their session joined. */
  static readonly byId = new Map<string, ScriptedTeleopRoom>();

  /** Everything participants sent, in arrival order. */
  readonly received: Received[] = [];
  /** Status of acks to commands the room accepts. */
  ackStatus: tsunagi.v1.CommandAck.Status = Status.APPLIED;
  /** device_round_trip_ms on accepted acks. */
  deviceRoundTripMs = 4;
  /** Set to false to stop acking commands (a device that went quiet). */
  acking = true;
  /** Pongs that answered ping(), by correlation id. */
  readonly pongs = new Map<number, { sessionId: string; pong: tsunagi.v1.IPong; at: number }>();

  private profiles = new Map<string, tsunagi.v1.IDeviceProfile>();
  private leases = new Map<string, Lease | undefined>();
  private estopped = new Set<string>();
  private roles = new Map<string, string>();
  private clients_ = new Map<string, Client>();
  private skewMs = 0;
  private ttlMs = 1000;
  private nextPingId = 1000;

  onCreate(options: ScriptedRoomOptions) {
    this.skewMs = options.clockSkewMs ?? 0;
    this.ttlMs = options.ttlMs ?? 1000;
    for (const profile of options.profiles) {
      this.profiles.set(profile.deviceId!, profile);
      this.leases.set(profile.deviceId!, undefined);
    }
    ScriptedTeleopRoom.byId.set(this.roomId, this);
    this.onMessageBytes(ENVELOPE_MESSAGE_TYPE, (client: Client, bytes: Uint8Array) => this.receive(client, bytes));
  }

  onJoin(client: Client, options: { role?: string } = {}) {
    this.roles.set(client.sessionId, options.role ?? "operator");
    this.clients_.set(client.sessionId, client);
    for (const deviceId of this.profiles.keys()) {
      this.sendTo(client, { deviceProfile: this.profiles.get(deviceId) });
      this.sendTo(client, { leaseState: this.leaseState(deviceId) });
    }
  }

  onLeave(client: Client) {
    this.clients_.delete(client.sessionId);
    for (const [deviceId, lease] of this.leases) {
      if (lease?.holder === client.sessionId) this.endLease(deviceId, "disconnected");
    }
  }

  onDispose() {
    ScriptedTeleopRoom.byId.delete(this.roomId);
  }

  /** The room's clock: Date.now() plus the skew. */
  now(): number {
    return Date.now() + this.skewMs;
  }

  /** Envelopes of one body kind, optionally from one session. */
  sent<K extends NonNullable<Envelope["body"]>>(kind: K, sessionId?: string): Received[] {
    return this.received.filter((r) => r.envelope.body === kind && (sessionId === undefined || r.sessionId === sessionId));
  }

  lease(deviceId: string): Lease | undefined {
    return this.leases.get(deviceId);
  }

  /** Sends a round-trip probe as the TeleopRoom does; returns its correlation id. */
  ping(sessionId: string): number {
    const correlationId = this.nextPingId++;
    this.sendTo(this.clients_.get(sessionId)!, { ping: { clientTimeMs: this.now() } }, correlationId);
    return correlationId;
  }

  /** Broadcasts telemetry for a device. */
  telemetry(telemetry: tsunagi.v1.ITelemetry) {
    this.broadcastEnvelope({ telemetry: { sampledAtMs: this.now(), ...telemetry } });
  }

  /** Demotes the holder of `deviceId` as the TeleopRoom does: Error (correlation 0), then the lease ends. */
  demote(deviceId: string) {
    const lease = this.leases.get(deviceId);
    if (!lease) throw new Error(`nobody holds ${deviceId}`);
    const client = this.clients_.get(lease.holder)!;
    client.sendBytes(ENVELOPE_MESSAGE_TYPE, errorEnvelope(ErrorCode.LATENCY_BUDGET_EXCEEDED, `round trip to ${deviceId} is above its budget: demoted`, 0));
    this.endLease(deviceId, "latency-budget");
  }

  /** Replaces a device's profile and announces it. */
  setProfile(profile: tsunagi.v1.IDeviceProfile) {
    this.profiles.set(profile.deviceId!, profile);
    this.broadcastEnvelope({ deviceProfile: profile });
  }

  // --- the operator channel ------------------------------------------------------------

  private receive(client: Client, bytes: Uint8Array) {
    const envelope = decodeEnvelope(bytes);
    const at = this.now();
    this.received.push({ sessionId: client.sessionId, envelope, at });
    const correlationId = envelope.correlationId;
    const role = this.roles.get(client.sessionId) ?? "visitor";
    switch (envelope.body) {
      case "clockSyncPing": {
        const t1 = this.now();
        this.sendTo(client, { clockSyncPong: { t0Ms: envelope.clockSyncPing.t0Ms, t1Ms: t1, t2Ms: this.now() } }, correlationId);
        break;
      }
      case "pong":
        this.pongs.set(correlationId, { sessionId: client.sessionId, pong: envelope.pong, at });
        break;
      case "leaseRequest":
        this.onLeaseRequest(client, role, envelope.leaseRequest as tsunagi.v1.LeaseRequest, correlationId);
        break;
      case "controlCommand":
        this.onCommand(client, envelope.controlCommand as tsunagi.v1.ControlCommand, at);
        break;
      case "estop": {
        if (role === "visitor" || role === "host") return this.refuse(client, ErrorCode.FORBIDDEN, `role "${role}" may not raise an e-stop`, correlationId);
        const estop = envelope.estop as tsunagi.v1.EStop;
        const targets = estop.deviceId && !estop.all ? [estop.deviceId] : [...this.profiles.keys()];
        for (const deviceId of targets) {
          this.broadcastEnvelope({ estop: { deviceId, reason: estop.reason, raisedBy: client.sessionId, raisedAtMs: this.now() } });
          this.estopped.add(deviceId);
          this.endLease(deviceId, "estopped");
        }
        this.sendTo(client, { estop: { deviceId: estop.deviceId, all: estop.all, reason: estop.reason, raisedBy: client.sessionId, raisedAtMs: estop.raisedAtMs } }, correlationId);
        break;
      }
      case "reset": {
        const reset = envelope.reset as tsunagi.v1.Reset;
        if (role !== "supervisor") return this.refuse(client, ErrorCode.FORBIDDEN, `only a supervisor may reset an e-stop (you are ${role})`, correlationId);
        this.estopped.delete(reset.deviceId);
        const notice = { deviceId: reset.deviceId, by: client.sessionId, reason: reset.reason };
        this.broadcastEnvelope({ reset: notice });
        this.broadcastEnvelope({ leaseState: this.leaseState(reset.deviceId, undefined, "reset") });
        this.sendTo(client, { reset: notice }, correlationId);
        break;
      }
      default:
        break; // heartbeats are only recorded
    }
  }

  private onLeaseRequest(client: Client, role: string, request: tsunagi.v1.LeaseRequest, correlationId: number) {
    const deviceId = request.deviceId;
    if (!this.profiles.has(deviceId)) return this.refuse(client, ErrorCode.DEVICE_UNKNOWN, `no device "${deviceId}"`, correlationId);
    const current = this.leases.get(deviceId);
    const sessionId = client.sessionId;
    switch (request.action) {
      case Action.ACQUIRE:
        if (role !== "operator" && role !== "supervisor") return this.refuse(client, ErrorCode.FORBIDDEN, `role "${role}" may not hold a lease`, correlationId);
        if (this.estopped.has(deviceId)) return this.refuse(client, ErrorCode.ESTOPPED, `${deviceId} is e-stopped`, correlationId);
        if (current && current.holder !== sessionId) return this.refuse(client, ErrorCode.LEASE_HELD, `${deviceId} is held by ${current.holder}`, correlationId);
        if (!current) this.grant(deviceId, sessionId, role, "granted");
        break;
      case Action.RELEASE:
        if (current?.holder !== sessionId) return this.refuse(client, ErrorCode.LEASE_NOT_HELD, "you do not hold it", correlationId);
        this.endLease(deviceId, "released");
        break;
      case Action.PREEMPT:
        if (role !== "supervisor") return this.refuse(client, ErrorCode.FORBIDDEN, "only a supervisor may preempt", correlationId);
        this.grant(deviceId, sessionId, role, "preempted");
        break;
      case Action.TRANSFER: {
        if (current?.holder !== sessionId) return this.refuse(client, ErrorCode.LEASE_NOT_HELD, "you do not hold it", correlationId);
        const target = request.toSessionId;
        if (!this.clients_.has(target)) return this.refuse(client, ErrorCode.WRONG_TYPE, "no such session", correlationId);
        this.grant(deviceId, target, this.roles.get(target)!, "transferred");
        break;
      }
      default:
        return this.refuse(client, ErrorCode.WRONG_TYPE, "no action", correlationId);
    }
    this.sendTo(client, { leaseState: this.leaseState(deviceId) }, correlationId);
  }

  private onCommand(client: Client, command: tsunagi.v1.ControlCommand, at: number) {
    if (!this.acking) return;
    const lease = this.leases.get(command.deviceId);
    const ours = lease && lease.leaseId === command.leaseId && lease.holder === client.sessionId;
    const status = ours ? this.ackStatus : Status.NO_LEASE;
    const adapter = ours && status === Status.APPLIED;
    this.sendTo(client, {
      commandAck: {
        deviceId: command.deviceId, leaseId: command.leaseId, seq: command.seq, status,
        origin: adapter ? tsunagi.v1.CommandAck.Origin.ADAPTER : tsunagi.v1.CommandAck.Origin.ROOM,
        issuedAtMs: command.issuedAtMs,
        receivedAtMs: adapter ? at : 0, appliedAtMs: adapter ? at : 0,
        oneWayLatencyMs: adapter ? at - command.issuedAtMs : 0,
        deviceRoundTripMs: adapter ? this.deviceRoundTripMs : 0,
      },
    });
  }

  // --- helpers -------------------------------------------------------------------------

  private grant(deviceId: string, holder: string, role: string, cause: string) {
    const ended = this.leases.get(deviceId);
    this.leases.set(deviceId, { leaseId: `lease-${++leaseCounter}`, holder, role, expiresAt: this.now() + this.ttlMs });
    this.broadcastEnvelope({ leaseState: this.leaseState(deviceId, ended?.leaseId, cause === "granted" ? "" : cause) });
  }

  private endLease(deviceId: string, cause: string) {
    const ended = this.leases.get(deviceId);
    this.leases.set(deviceId, undefined);
    this.broadcastEnvelope({ leaseState: this.leaseState(deviceId, ended?.leaseId, cause) });
  }

  private leaseState(deviceId: string, endedLeaseId = "", cause = ""): tsunagi.v1.ILeaseState {
    const lease = this.leases.get(deviceId);
    return {
      deviceId, leaseId: lease?.leaseId ?? "", holderSessionId: lease?.holder ?? "", holderRole: lease?.role ?? "",
      expiresAtMs: lease?.expiresAt ?? 0, ttlMs: this.ttlMs, estopped: this.estopped.has(deviceId),
      endedLeaseId, cause, online: true,
    };
  }

  private refuse(client: Client, code: number, message: string, correlationId: number) {
    client.sendBytes(ENVELOPE_MESSAGE_TYPE, errorEnvelope(code, message, correlationId));
  }

  private sendTo(client: Client, body: Omit<IEnvelope, "correlationId">, correlationId = 0) {
    client.sendBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope({ ...body, correlationId }));
  }

  private broadcastEnvelope(body: Omit<IEnvelope, "correlationId">) {
    this.broadcastBytes(ENVELOPE_MESSAGE_TYPE, encodeEnvelope({ ...body, correlationId: 0 }), {});
  }
}

/** A Colyseus server on 127.0.0.1 with the scripted room as "teleop-script". */
export async function startScriptedServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const httpServer = http.createServer();
  const transport = new WebSocketTransport({ server: httpServer });
  const server = new Server({ transport, greet: false, gracefullyShutdown: false });
  server.define("teleop-script", ScriptedTeleopRoom);
  await server.listen(0, "127.0.0.1");
  const { port } = httpServer.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      await server.gracefullyShutdown(false).catch(() => {});
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
