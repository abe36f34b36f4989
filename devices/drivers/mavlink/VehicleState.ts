/**
 * What the driver knows of the vehicle, from what it sends: its HEARTBEAT (mode, armed,
 * system status, and that it is there at all), ATTITUDE, LOCAL_POSITION_NED,
 * GLOBAL_POSITION_INT, SYS_STATUS and STATUSTEXT. Plain data, updated by apply(); the
 * frames are converted here once, so the rest of the adapter sees the project's frames:
 *
 * - MAVLink local NED (x north, y east, z down; yaw clockwise from north) becomes the
 *   site's East-North-Up pose (x east, y north, z up; yaw counter-clockwise from east).
 * - Body velocities are forward / left / up, as the drone axes are commanded.
 *
 * @example
 *   const state = new VehicleState(() => Date.now());
 *   link.onMessage((message) => state.apply(message));
 *   state.modeName;        // "GUIDED"
 *   state.heartbeatAgeMs(); // ms since the vehicle's last HEARTBEAT
 */
import { ardupilotmega, common, minimal, type MavLinkData } from "node-mavlink";

/** Text messages kept for telemetry, and how long each is. */
export const STATUS_TEXTS_KEPT = 8;
export const STATUS_TEXT_TTL_MS = 10_000;

export interface StatusTextEntry {
  severity: number;
  text: string;
  atMs: number;
}

/** ENU pose and its velocities. */
export interface VehiclePose {
  x: number;
  y: number;
  z: number;
  roll: number;
  pitch: number;
  yaw: number;
}

export class VehicleState {
  /** Monotonic ms of the last HEARTBEAT; undefined before the first. */
  heartbeatAt: number | undefined;
  armed = false;
  /** ArduCopter's custom mode number, and its name ("GUIDED"); "" before the first heartbeat. */
  customMode = -1;
  modeName = "";
  /** MAV_STATE name: "STANDBY", "ACTIVE", "CRITICAL"... */
  systemStatus = "";
  pose: VehiclePose = { x: 0, y: 0, z: 0, roll: 0, pitch: 0, yaw: 0 };
  /** Site-frame (ENU) velocity, m/s, and yaw rate (counter-clockwise), rad/s. */
  velocity = { east: 0, north: 0, up: 0, yawRate: 0 };
  geo: { lat: number; lon: number; altMslM: number; altRelativeM: number } | undefined;
  battery: { percent: number; voltage: number } | undefined;
  /** SYS_STATUS sensors present but unhealthy, as a bit mask. */
  unhealthySensors = 0;
  readonly statusTexts: StatusTextEntry[] = [];
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  heartbeatAgeMs(): number {
    return this.heartbeatAt === undefined ? Infinity : this.now() - this.heartbeatAt;
  }

  /** Altitude above home, m (up positive). */
  get altitudeM(): number {
    return this.pose.z;
  }

  /** The body-frame velocity on a drone axis: forward, left, up (m/s), or counter-clockwise yaw rate (rad/s). */
  bodyVelocity(axis: "vx" | "vy" | "vz" | "yaw-rate"): number {
    const { east, north, up, yawRate } = this.velocity;
    const yaw = this.pose.yaw;
    switch (axis) {
      case "vx": return east * Math.cos(yaw) + north * Math.sin(yaw);
      case "vy": return -east * Math.sin(yaw) + north * Math.cos(yaw);
      case "vz": return up;
      case "yaw-rate": return yawRate;
    }
  }

  /** Status texts of the last STATUS_TEXT_TTL_MS, oldest first. */
  recentTexts(wallNow: number): StatusTextEntry[] {
    return this.statusTexts.filter((entry) => wallNow - entry.atMs <= STATUS_TEXT_TTL_MS);
  }

  /**
   * What an ACCEPTED command changed, known before the next HEARTBEAT says so (up to a
   * second later): an operator who takes off right after arming must not be refused as
   * "disarmed". The next HEARTBEAT overrides it either way.
   */
  accepted(change: { armed?: boolean; customMode?: number }): void {
    if (change.armed !== undefined) this.armed = change.armed;
    if (change.customMode !== undefined) {
      this.customMode = change.customMode;
      this.modeName = ardupilotmega.CopterMode[change.customMode] ?? `MODE ${change.customMode}`;
    }
  }

  apply(message: MavLinkData, wallNow: number): void {
    if (message instanceof minimal.Heartbeat) {
      if (message.type === minimal.MavType.GCS) return; // another GCS relayed by a router: not the vehicle
      this.heartbeatAt = this.now();
      this.armed = (message.baseMode & minimal.MavModeFlag.SAFETY_ARMED) !== 0;
      this.customMode = message.customMode;
      this.modeName = ardupilotmega.CopterMode[message.customMode] ?? `MODE ${message.customMode}`;
      this.systemStatus = minimal.MavState[message.systemStatus] ?? String(message.systemStatus);
    } else if (message instanceof common.Attitude) {
      this.pose.roll = message.roll;
      this.pose.pitch = -message.pitch;
      this.pose.yaw = Math.PI / 2 - message.yaw;
      this.velocity.yawRate = -message.yawspeed;
    } else if (message instanceof common.LocalPositionNed) {
      this.pose.x = message.y;
      this.pose.y = message.x;
      this.pose.z = -message.z;
      this.velocity.east = message.vy;
      this.velocity.north = message.vx;
      this.velocity.up = -message.vz;
    } else if (message instanceof common.GlobalPositionInt) {
      this.geo = { lat: message.lat / 1e7, lon: message.lon / 1e7, altMslM: message.alt / 1000, altRelativeM: message.relativeAlt / 1000 };
    } else if (message instanceof common.SysStatus) {
      const percent = message.batteryRemaining;
      this.battery = { percent: percent >= 0 ? percent : 0, voltage: message.voltageBattery > 0 && message.voltageBattery < 0xffff ? message.voltageBattery / 1000 : 0 };
      this.unhealthySensors = message.onboardControlSensorsPresent & message.onboardControlSensorsEnabled & ~message.onboardControlSensorsHealth;
    } else if (message instanceof common.StatusText) {
      this.statusTexts.push({ severity: message.severity, text: String(message.text).replace(/\0+$/, "").slice(0, 50), atMs: wallNow });
      if (this.statusTexts.length > STATUS_TEXTS_KEPT) this.statusTexts.shift();
    }
  }
}
