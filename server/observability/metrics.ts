/**
 * Prometheus metrics of a region node. Hot-path counts (messages, bytes) are plain
 * numbers read at scrape time, so a send or receive costs an addition, not a label
 * lookup.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from "prom-client";
import { ackOriginName, ackStatusName, ErrorCode, tsunagi } from "../../proto/index.ts";
import type { VoiceHealth } from "../voice/VoiceBackend.ts";

/** More than CommandAck.Origin has values: the stride of the (status, origin) counts. */
const COMMAND_ORIGINS = 8;
/** The ack statuses this build knows; any other is counted in one bucket. */
const KNOWN_ACK_STATUS: ReadonlySet<number> = new Set(Object.values(tsunagi.v1.CommandAck.Status).filter((value): value is number => typeof value === "number"));
/** The bucket of ack statuses this build does not know (above every known one). */
const UNKNOWN_TO_THIS_BUILD = 255;

/**
 * The one series for a label value from outside (a device's ack status, a peer's error
 * code) that this build does not know. Not "UNKNOWN": that is a real ack status ("sent,
 * nobody answered").
 */
export const UNRECOGNISED = "UNRECOGNISED";
/** The names of an enum of the contract. */
const enumNames = (values: Record<string, string | number>): string[] => Object.keys(values).filter((key) => typeof values[key] === "number");
/**
 * Codes the node counts that are no ErrorCode of the contract, as it is sent to no one:
 * the audit log's troubles (AuditLogs: `AUDIT_` and the problem's kind, a failed archive;
 * a room's failed write). docs/operations.md lists them.
 */
const INTERNAL_ERROR_LABELS = ["AUDIT_WRITE_FAILED", "AUDIT_UNREACHABLE", "AUDIT_RESTORED", "AUDIT_LOST", "AUDIT_RECHAINED", "AUDIT_ARCHIVE_FAILED"];
/** tsunagi_errors_total's codes: the ErrorCode names, and the node's own failures above. */
const ERROR_CODE_LABELS: ReadonlySet<string> = new Set([...enumNames(ErrorCode), ...INTERNAL_ERROR_LABELS]);
/** Ack and action statuses by name. */
const ACK_STATUS_LABELS: ReadonlySet<string> = new Set(enumNames(tsunagi.v1.CommandAck.Status));
/** Who decided an ack or an action result (ackOriginName). */
const ORIGIN_LABELS: ReadonlySet<string> = new Set(["adapter", "room"]);
/** A matchmaking request's outcome: ok, or the code it was refused with. */
const MATCHMAKE_OUTCOME_LABELS: ReadonlySet<string> = new Set(["ok", ...ERROR_CODE_LABELS]);

/**
 * Bounds the labels of `counter` whose values can come from outside: each value not in
 * its set is counted under UNRECOGNISED, so made-up values cannot create series. Applied
 * once here, so no caller can forget it.
 */
function boundLabels<L extends string>(counter: Counter<L>, known: Partial<Record<L, ReadonlySet<string>>>): Counter<L> {
  const inc = counter.inc.bind(counter) as (labels?: Partial<Record<L, string | number>> | number, value?: number) => void;
  const bounded = Object.keys(known) as L[];
  counter.inc = ((labels?: Partial<Record<L, string | number>> | number, value?: number) => {
    if (labels === undefined || typeof labels === "number") { inc(labels); return; }
    let checked = labels;
    for (const name of bounded) {
      const given = labels[name];
      if (given !== undefined && !known[name]!.has(String(given))) checked = { ...checked, [name]: UNRECOGNISED };
    }
    inc(checked, value);
  }) as Counter<L>["inc"];
  return counter;
}

export class NodeMetrics {
  /** One registry per node, so several nodes in one process never share series. */
  readonly registry = new Registry();
  /** Messages and bytes per direction, added to on every frame. */
  readonly traffic = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
  /** Coded errors sent to clients, by code name and where they came from. */
  readonly errors: Counter<"code" | "source">;
  /** Matchmaking requests by method and outcome. */
  readonly matchmake: Counter<"method" | "outcome">;
  /** Control commands by ack status and by who decided it (room or adapter). */
  readonly commands: Counter<"status" | "origin">;
  /** Device actions (arm, take off, land...) by result status and who decided it. */
  readonly actions: Counter<"status" | "origin">;
  /** E-stops raised, by who raised them (operator, supervisor, device, room). */
  readonly estops: Counter<"source">;
  /** Lease changes by kind (granted, released, expired, preempted, transferred, revoked, estopped). */
  readonly leases: Counter<"event">;
  /** Teleop counts added on hot paths, read at scrape time. */
  readonly teleop = { telemetryDropped: 0 };
  /** Expo counts added on hot paths, read at scrape time. */
  readonly expo = { moves: 0, movesRefused: 0, frames: 0, framesSkipped: 0, updates: 0, ticks: 0, tickSeconds: 0 };
  /** Zone handoffs by outcome (reserved, failed). */
  readonly handoffs: Counter<"outcome">;
  /** Rooms handed between nodes, by reason and outcome (complete, aborted). */
  readonly roomHandoffs: Counter<"reason" | "outcome">;
  /** Cluster ownership (etcd): this node's lease lost or granted again, peers taken as dead by the silence rule, peers silent to direct heartbeats. */
  readonly ownership: Counter<"event">;
  /** The node's Janus started again after it died (server/voice). */
  readonly janusRestarts: Counter;
  /**
   * The node's Redis connections ("region": presence, matchmaking; "cluster": registry,
   * directory, devices, audit): lost, back, and back on another server than before (a
   * Sentinel failover moved the primary).
   */
  readonly redis: Counter<"connection" | "event">;
  /** Voice grants asked of rooms, by outcome (granted, forbidden, unavailable, rate_limited, failed). */
  readonly voiceGrants: Counter<"outcome">;
  /** VoiceHear sent: a client's set of voices to hear changed (proximity, joins, leaves). */
  readonly voiceHearUpdates: Counter;
  /** The rooms' voice as it stands (server/voice: VoiceBackend.health), when the node runs it. */
  voiceHealth?: () => VoiceHealth;
  /** Handoff states entered (init, freeze, transfer, switch, redirect, complete, aborted). */
  readonly handoffTransitions: Counter<"state">;
  /** How long handoffs took from Init to their outcome, s. */
  readonly handoffSeconds: Histogram<"outcome">;
  /** Room counts added on hot paths, read at scrape time. */
  readonly rooms = { duplicateInputs: 0, inputsAfterHandoff: 0, inputGaps: 0, snapshotsWritten: 0, snapshotsStale: 0, snapshotsFailed: 0, handoffDropped: 0 };
  /** Adapters sent to the node of the room that owns their device. */
  readonly deviceRedirects: Counter;
  /** Device-channel frames dropped unread: no seal, a MAC that does not match, or a replayed sequence number. */
  readonly deviceFramesRefused: Counter<"reason">;

  constructor(sources: { connections: () => number; roomsByType: () => Record<string, number>; devicesOnline?: () => number }) {
    collectDefaultMetrics({ register: this.registry, prefix: "tsunagi_", eventLoopMonitoringPrecision: 20 });
    const registers = [this.registry];
    const traffic = this.traffic;

    new Gauge({
      name: "tsunagi_connections", help: "Open client connections on this node.", registers,
      collect() { this.set(sources.connections()); },
    });
    new Gauge({
      name: "tsunagi_rooms", help: "Rooms hosted on this node, by room type.", labelNames: ["type"], registers,
      collect() {
        this.reset();
        for (const [type, count] of Object.entries(sources.roomsByType())) this.set({ type }, count);
      },
    });
    new Gauge({
      name: "tsunagi_devices_online", help: "Edge adapters authenticated and connected to this node's gateway.", registers,
      collect() { this.set(sources.devicesOnline?.() ?? 0); },
    });
    const voice = () => this.voiceHealth?.();
    new Gauge({
      name: "tsunagi_voice_up", help: "1 while the node's voice (its Janus) is up; 0 when it is down or off.", registers,
      collect() { this.set(voice()?.up ? 1 : 0); },
    });
    new Gauge({
      name: "tsunagi_voice_rooms", help: "Voice rooms open in the node's Janus.", registers,
      collect() { this.set(voice()?.rooms ?? 0); },
    });
    new Gauge({
      name: "tsunagi_voice_participants", help: "Voice grants held in the node's voice rooms.", registers,
      collect() { this.set(voice()?.participants ?? 0); },
    });
    this.redis = new Counter({ name: "tsunagi_redis_connection_events_total", help: "The node's Redis connections lost, back, and back on a new primary (failover), by connection (region, cluster).", labelNames: ["connection", "event"], registers });
    this.janusRestarts = new Counter({ name: "tsunagi_voice_janus_restarts_total", help: "Times the node's Janus was started again after it died.", registers });
    this.voiceGrants = new Counter({ name: "tsunagi_voice_grants_total", help: "Voice grants asked of the node's rooms, by outcome.", labelNames: ["outcome"], registers });
    this.voiceHearUpdates = new Counter({ name: "tsunagi_voice_hear_updates_total", help: "Changes sent to clients of the voices they hear (VoiceHear).", registers });
    const counterOf = (name: string, help: string, read: () => number) => new Counter({
      name, help, registers,
      collect() { this.reset(); this.inc(read()); },
    });
    counterOf("tsunagi_messages_in_total", "Frames received from clients.", () => traffic.messagesIn);
    counterOf("tsunagi_messages_out_total", "Frames sent to clients.", () => traffic.messagesOut);
    counterOf("tsunagi_bytes_in_total", "Bytes received from clients.", () => traffic.bytesIn);
    counterOf("tsunagi_bytes_out_total", "Bytes sent to clients.", () => traffic.bytesOut);

    this.errors = boundLabels(new Counter({
      name: "tsunagi_errors_total", help: "Coded errors returned to senders, by code.",
      labelNames: ["code", "source"], registers,
    }), { code: ERROR_CODE_LABELS });
    const commandCounts = () => this.commandCounts;
    this.commands = new Counter({
      name: "tsunagi_teleop_commands_total", help: "Control commands by ack status and origin (room or adapter).",
      labelNames: ["status", "origin"], registers,
      collect() {
        this.reset();
        for (const [key, count] of commandCounts()) {
          const status = Math.floor(key / COMMAND_ORIGINS);
          this.inc({ status: status === UNKNOWN_TO_THIS_BUILD ? UNRECOGNISED : ackStatusName(status), origin: ackOriginName(key % COMMAND_ORIGINS) }, count);
        }
      },
    });
    this.actions = boundLabels(new Counter({
      name: "tsunagi_teleop_actions_total", help: "Device actions (arm, take off, land...) by result status and origin (room or adapter).",
      labelNames: ["status", "origin"], registers,
    }), { status: ACK_STATUS_LABELS, origin: ORIGIN_LABELS });
    this.estops = new Counter({ name: "tsunagi_teleop_estops_total", help: "E-stops raised, by source.", labelNames: ["source"], registers });
    this.leases = new Counter({ name: "tsunagi_teleop_lease_events_total", help: "Control lease changes, by event.", labelNames: ["event"], registers });
    const teleop = this.teleop;
    counterOf("tsunagi_teleop_telemetry_dropped_total", "Telemetry frames not sent to a backpressured participant (a newer one follows).", () => teleop.telemetryDropped);
    const expo = this.expo;
    counterOf("tsunagi_expo_moves_total", "Visitor moves applied.", () => expo.moves);
    counterOf("tsunagi_expo_moves_refused_total", "Visitor moves refused (out of hall, stale, flood, malformed).", () => expo.movesRefused);
    counterOf("tsunagi_expo_frames_total", "Per-tick frames sent to visitors.", () => expo.frames);
    counterOf("tsunagi_expo_frames_skipped_total", "Frames not sent to a backpressured visitor (the next one catches up).", () => expo.framesSkipped);
    counterOf("tsunagi_expo_updates_total", "Neighbour entries (appeared, moved, gone) sent in frames.", () => expo.updates);
    counterOf("tsunagi_expo_ticks_total", "Expo room ticks run.", () => expo.ticks);
    counterOf("tsunagi_expo_tick_seconds_total", "Time spent in expo room ticks.", () => expo.tickSeconds);
    this.handoffs = new Counter({ name: "tsunagi_expo_handoffs_total", help: "Zone handoffs, by outcome.", labelNames: ["outcome"], registers });
    this.roomHandoffs = new Counter({ name: "tsunagi_room_handoffs_total", help: "Rooms handed to another node, by reason and outcome (complete, aborted).", labelNames: ["reason", "outcome"], registers });
    this.ownership = new Counter({
      name: "tsunagi_cluster_ownership_events_total",
      help: "Cluster ownership events seen by this node (etcd): lease_lost (its rooms and devices no longer confirmed its own), lease_regained (claimed again), peer_taken_dead (a silent node removed from the registry), peer_unanswering (a peer answered no direct heartbeat for cluster.nodeTtlMs).",
      labelNames: ["event"], registers,
    });
    this.handoffTransitions = new Counter({ name: "tsunagi_room_handoff_transitions_total", help: "Room handoff states entered, by state.", labelNames: ["state"], registers });
    this.handoffSeconds = new Histogram({
      name: "tsunagi_room_handoff_seconds", help: "Room handoffs from Init to their outcome, s.", labelNames: ["outcome"], registers,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    const rooms = this.rooms;
    counterOf("tsunagi_room_duplicate_inputs_total", "Numbered inputs dropped as already applied (sent again after a handoff or a reconnection).", () => rooms.duplicateInputs);
    counterOf("tsunagi_room_input_gaps_total", "Numbered inputs a room never received: skipped numbers in a session's sequence (lost on the way: 0 unless a client gave up resending).", () => rooms.inputGaps);
    counterOf("tsunagi_room_snapshots_written_total", "Room snapshots written for failover.", () => rooms.snapshotsWritten);
    counterOf("tsunagi_room_snapshots_stale_total", "Room snapshot writes refused: a newer owner of the room had written one (this copy is fenced off).", () => rooms.snapshotsStale);
    counterOf("tsunagi_room_snapshots_failed_total", "Room snapshot writes that reached no store.", () => rooms.snapshotsFailed);
    counterOf("tsunagi_room_handoff_dropped_total", "Inputs a frozen room's queue had no room for (MAX_QUEUED_INPUTS; the SDK sends numbered ones again), and sends a moved session's parked stand-in could not hold.", () => rooms.handoffDropped);
    counterOf("tsunagi_room_inputs_after_handoff_total", "Inputs that reached a room's old home after its handoff's Switch, not applied there (the SDK sends numbered ones again to the new home).", () => rooms.inputsAfterHandoff);
    this.deviceRedirects = new Counter({ name: "tsunagi_device_redirects_total", help: "Adapters sent to the node of the room that owns their device.", registers });
    this.deviceFramesRefused = new Counter({
      name: "tsunagi_device_frames_refused_total", help: "Device-channel frames dropped unread, by reason: missing (no seal), mac (forged or altered), replay (old sequence number).",
      labelNames: ["reason"], registers,
    });
    this.matchmake = boundLabels(new Counter({
      name: "tsunagi_matchmake_total", help: "Matchmaking requests, by method and outcome.",
      labelNames: ["method", "outcome"], registers,
    }), { outcome: MATCHMAKE_OUTCOME_LABELS });
  }

  /**
   * Counts one control command's ack: the hot-path form of commands.inc({status, origin}),
   * an addition to a plain number per (status, origin) that the counter reads at scrape.
   */
  countCommand(status: number, origin: number): void {
    // An adapter's ack may carry any status: one this build does not know is counted as such, one series.
    const known = KNOWN_ACK_STATUS.has(status) ? status : UNKNOWN_TO_THIS_BUILD;
    const key = known * COMMAND_ORIGINS + (origin === tsunagi.v1.CommandAck.Origin.ADAPTER ? tsunagi.v1.CommandAck.Origin.ADAPTER : tsunagi.v1.CommandAck.Origin.ROOM);
    this.commandCounts.set(key, (this.commandCounts.get(key) ?? 0) + 1);
  }
  /** Acks counted per status * COMMAND_ORIGINS + origin, read by the commands counter at scrape. */
  private readonly commandCounts = new Map<number, number>();

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
