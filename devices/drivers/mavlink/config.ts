/**
 * The MAVLink driver's settings, from the adapter's `--driver-config FILE` (JSON),
 * checked with one schema so a typo fails at start with the field named.
 *
 * @example
 *   { "endpoint": "udpout:192.168.144.10:14555", "vehicle": { "systemId": 1 }, "estopAction": "land" }
 */
import { z } from "zod";
import { ENDPOINT_FORMS, parseMavlinkEndpoint } from "./endpoint.ts";

const ids = (systemId: number, componentId: number) => z.strictObject({
  systemId: z.number().int().min(1).max(255).default(systemId),
  componentId: z.number().int().min(0).max(255).default(componentId),
}).prefault({});

export const mavlinkConfigSchema = z.strictObject({
  /** Where the vehicle is: udpin:HOST:PORT or udpout:HOST:PORT. */
  endpoint: z.string().refine((text) => { try { parseMavlinkEndpoint(text); return true; } catch { return false; } }, { message: `must be ${ENDPOINT_FORMS}` }),
  /** The autopilot's MAVLink ids (ArduPilot SYSID_THISMAV, and MAV_COMP_ID_AUTOPILOT1). */
  vehicle: ids(1, 1),
  /** This adapter's ids as the vehicle's GCS (ArduPilot SYSID_MYGCS must equal systemId). */
  gcs: ids(255, 190),
  /** Without a HEARTBEAT from the vehicle for this long, the device is offline. */
  heartbeatTimeoutMs: z.number().int().min(500).max(30_000).default(3000),
  /** What an e-stop does in the air: "land" (LAND mode) or "terminate" (MAV_CMD_DO_FLIGHTTERMINATION: motors off, it falls). */
  estopAction: z.enum(["land", "terminate"]).default("land"),
  /** After the operator's link is lost: hold (BRAKE) this long, then land; 0 lands at once. */
  linkLossHoldMs: z.number().int().min(0).max(120_000).default(5000),
  /** The vehicle's own GCS failsafe must act within this (FS_GCS_TIMEOUT), s. */
  maxGcsTimeoutS: z.number().positive().max(60).default(5),
  /** A velocity setpoint must lapse within this (GUID_TIMEOUT), s. */
  maxGuidedTimeoutS: z.number().positive().max(10).default(3),
  /** Rate of velocity setpoints while flying in GUIDED, and of the driver's loop, Hz. */
  setpointHz: z.number().int().min(5).max(50).default(20),
  /** Bounds published in the profile and enforced on every setpoint. */
  maxHorizontalSpeed: z.number().positive().max(30).default(5),
  maxVerticalSpeed: z.number().positive().max(10).default(2.5),
  maxYawRate: z.number().positive().max(6).default(1.5),
  maxAltitudeM: z.number().positive().max(500).default(120),
  /** COMMAND_LONG: wait per attempt, and further attempts. */
  ackTimeoutMs: z.number().int().min(50).max(10_000).default(500),
  commandRetries: z.number().int().min(0).max(10).default(3),
  /** Published in the profile: the adapter's watchdog window and latency budget, ms. */
  watchdogMs: z.number().int().min(50).max(5000).default(300),
  latencyBudgetMs: z.number().int().min(10).max(5000).default(150),
});

export type MavlinkConfig = z.infer<typeof mavlinkConfigSchema>;
export type MavlinkConfigInput = z.input<typeof mavlinkConfigSchema>;

/** Checks a config; throws a TypeError listing every problem by field. */
export function resolveMavlinkConfig(input: unknown): MavlinkConfig {
  const result = mavlinkConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.join(".") || "(config)"}: ${issue.message}`);
  throw new TypeError(`mavlink driver config: ${problems.join("; ")}`);
}
