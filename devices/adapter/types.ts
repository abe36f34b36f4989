/**
 * The adapter's public types: its options, its state and status, and its events. Kept
 * apart from the pieces (GatewayConnection, SafetyController, TelemetryBuffer) so each
 * can speak them without importing the facade that composes them.
 */
import type { Logger } from "pino";
import type { tsunagi } from "../../proto/index.ts";
import type { Driver } from "../drivers/types.ts";

/** Where the connection cycle is (see GatewayConnection); "stopped" before start() and after stop(). */
/** "device-unavailable": the machine itself does not answer (Driver.available()), so the adapter stays off the gateway until it does. */
export type AdapterState = "probing" | "connecting" | "authenticating" | "online" | "backoff" | "device-unavailable" | "stopped";

/** How the adapter proves it is the device: the enrolment secret (64 hex characters) or a device token (JWT). */
/**
 * How the device proves itself: the secret from enrolment (signed-challenge mode), a
 * device token, or a client certificate from the cluster's device CA with its key (PEM
 * texts; certificate mode, on the gateway's certificate listener).
 */
export type AdapterCredential = { secret: string } | { token: string } | { certificate: { cert: string; key: string } };

/** What AdapterRuntime needs; see options.ts for the checks and defaults. */
export interface AdapterRuntimeOptions {
  /** The enrolled device id, [A-Za-z0-9_.-]{1,64}. */
  deviceId: string;
  /** The device's driver, initialised (and its loop started) by the caller. */
  driver: Driver;
  credential: AdapterCredential;
  /** Base URLs of the region nodes to choose from, e.g. "https://tokyo-1.example.net:2567" (http:// only in dev mode). */
  nodes: string[];
  /** PEM CA certificates (the text, not a path) the nodes' and gateways' certificates must chain to. Default: the system's CAs. */
  ca?: string | Buffer;
  /**
   * Dev mode: plain http:// nodes and ws:// gateways are allowed (a loopback dev node,
   * `npm start`). Off by default: outside dev mode every hop is TLS, and an adapter given an
   * http:// node refuses to start, and one sent to a ws:// gateway refuses to connect.
   */
  devMode?: boolean;
  /** This adapter's version, semver ("1.4.2"); the gateway refuses anything else. */
  adapterVersion: string;
  /** Telemetry rate, Hz. Default 20. */
  telemetryHz?: number;
  /** Telemetry samples kept while offline; the oldest drop beyond this. Default 600 (30 s at 20 Hz). */
  telemetryBufferSize?: number;
  /** Reconnect backoff: full jitter, the cap doubling from initialMs to maxMs. Defaults 100 and 5000 ms. */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * The wait after another adapter turned out to run as this device (refused
   * DEVICE_CONFLICT, or replaced with close 4409): between half of it and all of it,
   * ms. Default 30 000.
   */
  conflictBackoffMs?: number;
  /** Where log lines go. Default: a silent logger (listen to the events instead). */
  logger?: Logger;
  /** Bound on opening the socket and completing the handshake. Default 10 000 ms. */
  handshakeTimeoutMs?: number;
  /** Bound on each /ping sample and on the /gateway request. Default 2000 ms. */
  httpTimeoutMs?: number;
  /** ClockSyncPing interval once online (the contract asks for at most 10 s). Default 5000 ms. */
  clockSyncIntervalMs?: number;
  /** Uniform random numbers in [0, 1), for the backoff jitter. Default Math.random. */
  random?: () => number;
  /** Monotonic client clock, ms (watchdog and clock sync). Default performance.now. */
  now?: () => number;
}

/** The last thing that went wrong, for operators and tests. */
export interface AdapterError {
  /** An ErrorCode: from the gateway's Error, or REGION_UNAVAILABLE when no node could be reached. Absent for a plain connection failure. */
  code?: number;
  /**
   * errorCodeName(code), or for failures without a code: "CONNECTION_FAILED",
   * "CONNECTION_CLOSED" (before the welcome), "HANDSHAKE_TIMEOUT", "GATEWAY_PROOF_FAILED"
   * (the gateway did not prove it knows the device secret), "INSECURE_URL" (a ws:// or
   * http:// address outside dev mode).
   */
  codeName: string;
  message: string;
  /** Where in the cycle it happened. */
  phase: "probe" | "gateway" | "connect" | "handshake" | "online";
  /** Device wall clock, Unix epoch ms. */
  at: number;
}

/**
 * Another adapter runs as this device: the gateway refused this one (DEVICE_CONFLICT) or
 * let the other replace it (close 4409). The machine is stopped on this side, the
 * adapter retries only every conflictBackoffMs, and a technician must stop one of the two.
 */
export interface AdapterConflict {
  /** When it was first seen, device wall clock (Unix epoch ms); cleared by the next welcome. */
  since: number;
  /** Refusals and replacements since. */
  count: number;
  message: string;
}

/** When and why the adapter last zeroed motion. */
export interface AdapterStop {
  /** Device wall clock, Unix epoch ms. */
  at: number;
  reason: string;
}

/** AdapterRuntime.status(): plain JSON. */
export interface AdapterStatus {
  deviceId: string;
  driver: string;
  state: AdapterState;
  connection: AdapterConnection | undefined;
  safety: AdapterSafety;
  watchdogWindowMs: number;
  lastStop: AdapterStop | undefined;
  lastError: AdapterError | undefined;
  /** Another adapter runs as this device: see AdapterConflict. Undefined when none is known. */
  conflict: AdapterConflict | undefined;
  counters: AdapterCounters;
  bufferedTelemetry: number;
  /** Half the round trip of the best clock sample, ms; null before the first. */
  clockUncertaintyMs: number | null;
  /** Every profile axis now: position in its unit, velocity in its unit per second. */
  joints: Array<{ name: string; position: number; velocity: number }>;
  /** The driver's own counters (a real device's link: messages, malformed payloads, retries), when it keeps any. */
  device?: object;
  /** When this snapshot was taken, device wall clock (Unix epoch ms). */
  at: number;
}

/** The adapter-side safety state (SafetyController). */
export interface AdapterSafety {
  /** The lease commands are accepted under; undefined when none. */
  lease: string | undefined;
  estopped: boolean;
  /**
   * Where the latched e-stop holds: "local" when it was raised at the machine (the local
   * endpoint, the device's own stop) and a technician has not yet reset it there, so a
   * supervisor's reset is refused; "remote" when a supervisor's reset clears it.
   * Undefined when none is latched.
   */
  estopOrigin: "local" | "remote" | undefined;
  /** The stop latch holds because the watchdog tripped (stopLatch === "watchdog"). */
  watchdogTripped: boolean;
  /**
   * Why the lease that was current died here for good, until a fresh lease: the watchdog
   * (no valid command or heartbeat in its window), the connection closing, or the adapter
   * stopping. Undefined when no such latch holds. Telemetry's watchdog_tripped carries
   * any of them.
   */
  stopLatch: "watchdog" | "connection closed" | "adapter stopping" | undefined;
  /** The lease and seq of the last command the device took; undefined since start or a reset. */
  lastApplied: { leaseId: string; seq: number } | undefined;
}

/** Where the adapter is connected while online. */
export interface AdapterConnection {
  /** The node's HTTP base URL, as configured. */
  node: string;
  /** The device endpoint the node named. */
  url: string;
  regionId: string;
  nodeId: string;
}

/** What the adapter has done and seen since it was made (AdapterRuntime.counters). */
export interface AdapterCounters {
  /** Acks sent, by status name ("APPLIED", "STALE", …). */
  acks: Record<string, number>;
  /** Action results sent, by status name. */
  actions: Record<string, number>;
  /** Connection cycles started (probe onwards). */
  connectAttempts: number;
  /** Welcomes after the first: times the adapter came back online. */
  reconnects: number;
  /** GatewayRedirects followed: the device's room was on another node. */
  redirects: number;
  telemetrySent: number;
  /** Telemetry samples dropped from the full offline buffer (oldest first). */
  telemetryDropped: number;
  /** Frames that were not a decodable binary Envelope. */
  malformed: number;
  /** Well-formed frames the adapter had no use for (wrong phase, wrong device, unsolicited). */
  unexpected: number;
  /**
   * Frames from the gateway dropped unread because they did not open: no seal, a MAC that
   * does not match (forged or altered on the path), or a replayed sequence number
   * (signed-challenge mode). Nothing in them was acted upon.
   */
  refusedFrames: number;
  /** Welcomes refused because the gateway did not prove it knows the device secret; the connection was cut. */
  gatewayProofFailures: number;
  /** Error envelopes received from the gateway. */
  errorsReceived: number;
  /** Error envelopes received from the gateway, by code name ("FORBIDDEN", …): a refusal stays counted after a later one replaces `lastError`. */
  errors: Record<string, number>;
  /** Times the watchdog tripped. */
  watchdogTrips: number;
  /** Times the connection closed with a lease current (that lease died here). */
  linkLossStops: number;
  /** E-stops latched (not counting re-raises while latched). */
  estops: number;
  /** Supervisors' resets refused because the e-stop holds at the machine (ESTOP_LOCAL). */
  resetsRefused: number;
}

/** The adapter's events and their payloads (AdapterRuntime.on). */
export interface AdapterEvents {
  /** Welcomed by a gateway. */
  online: AdapterConnection;
  /** An online connection closed (motion is already zeroed); a reconnect follows unless stopping. */
  offline: { reason: string; code: number };
  /** Every ack the adapter sent. */
  ack: tsunagi.v1.ICommandAck;
  /** An e-stop latched: from the gateway ("remote") or raised on the device ("device"). */
  estop: { source: "remote" | "device"; reason: string; raisedBy: string };
  /** The watchdog tripped; `leaseId` is the lease it killed. */
  watchdog: { leaseId: string | undefined };
  /** Anything that becomes `lastError`: refusals, unreachable nodes, gateway Errors. */
  error: AdapterError;
  /** Every state change. */
  state: AdapterState;
  /** The room says where to send the machine's camera (port 0: stop). Nothing to do with safety: it never reaches the SafetyController. */
  cameraTarget: tsunagi.v1.ICameraTarget;
}

/** AdapterEvents as listener signatures, the shape SafeEmitter takes. */
export type AdapterListeners = { [K in keyof AdapterEvents]: (payload: AdapterEvents[K]) => void };
