/**
 * The simulated flight controller's configuration: speed limits, take-off and landing
 * speeds, the geofence, the battery model and the failsafe timing, with their defaults
 * and the one check that refuses an impossible combination.
 *
 * @example
 *   const config = resolveFlightConfig("flight", { geofence: { maxRadiusM: 50 } });
 *   config.geofence;   // { maxRadiusM: 50, maxAltitudeM: 50 }, frozen
 */

export interface BatteryConfig {
  /** Charge at start, %. Default 100. */
  initialPct: number;
  /** "battery-low" below this, %. Default 30. */
  lowPct: number;
  /** Lands by itself below this, and refuses arm, take-off and hold, %. Default 15. */
  criticalPct: number;
  /** Drain while armed on the ground, %/s. Default 0.02. */
  idleDrainPctPerS: number;
  /** Drain while airborne, %/s, before motion. Default 0.1 (about 15 minutes of hover). */
  hoverDrainPctPerS: number;
  /** Extra drain per metre travelled in any direction, %. Default 0.01. */
  drainPctPerMetre: number;
}

/** The fence: a cylinder around home. */
export interface GeofenceConfig {
  /** Radius from home, m. Default 100. */
  maxRadiusM: number;
  /** Ceiling, m. Default 50. */
  maxAltitudeM: number;
}

export interface FlightControllerConfig {
  /** m/s, the magnitude of (vx, vy). Default 5. */
  maxHorizontalSpeed: number;
  /** m/s. Default 2. */
  maxVerticalSpeed: number;
  /** rad/s. Default 1.5. */
  maxYawRate: number;
  /** m/s. Default 1. */
  takeoffSpeed: number;
  /** m/s. Default 0.5. */
  landingSpeed: number;
  /** Flying descends no lower than this, so only land() puts the vehicle down, m. Default 1. */
  minFlightAltitudeM: number;
  /** Cylinder around home: radius and ceiling, m. Defaults 100 and 50. */
  geofence: GeofenceConfig;
  battery: BatteryConfig;
  /** How long to hover after a link loss before landing, ms. Default 3000. */
  linkLossHoldMs: number;
  /** Start and geofence centre, m. Fixed, so the fence does not creep from landing to landing. Default (0, 0). */
  home: { x: number; y: number };
}

/** Overrides of the defaults; the nested battery and geofence may be given in part. */
export type FlightConfigOverrides = Partial<Omit<FlightControllerConfig, "battery" | "geofence">> & {
  battery?: Partial<BatteryConfig>;
  geofence?: Partial<GeofenceConfig>;
};

export const defaultFlightControllerConfig: Readonly<FlightControllerConfig> = Object.freeze({
  maxHorizontalSpeed: 5,
  maxVerticalSpeed: 2,
  maxYawRate: 1.5,
  takeoffSpeed: 1,
  landingSpeed: 0.5,
  minFlightAltitudeM: 1,
  geofence: { maxRadiusM: 100, maxAltitudeM: 50 },
  battery: { initialPct: 100, lowPct: 30, criticalPct: 15, idleDrainPctPerS: 0.02, hoverDrainPctPerS: 0.1, drainPctPerMetre: 0.01 },
  linkLossHoldMs: 3000,
  home: { x: 0, y: 0 },
});

/** The defaults with `overrides` applied, checked and frozen; TypeError (naming `id`) for an impossible one. */
export function resolveFlightConfig(id: string, overrides: FlightConfigOverrides = {}): Readonly<FlightControllerConfig> {
  const base = defaultFlightControllerConfig;
  const config: FlightControllerConfig = {
    ...base,
    ...overrides,
    geofence: { ...base.geofence, ...overrides.geofence },
    battery: { ...base.battery, ...overrides.battery },
    home: { ...base.home, ...overrides.home },
  };
  checkConfig(id, config);
  return Object.freeze({
    ...config,
    geofence: Object.freeze(config.geofence),
    battery: Object.freeze(config.battery),
    home: Object.freeze(config.home),
  });
}

function checkConfig(id: string, config: FlightControllerConfig): void {
  const positive: [string, number][] = [
    ["maxHorizontalSpeed", config.maxHorizontalSpeed], ["maxVerticalSpeed", config.maxVerticalSpeed], ["maxYawRate", config.maxYawRate],
    ["takeoffSpeed", config.takeoffSpeed], ["landingSpeed", config.landingSpeed], ["minFlightAltitudeM", config.minFlightAltitudeM],
    ["geofence.maxRadiusM", config.geofence.maxRadiusM], ["geofence.maxAltitudeM", config.geofence.maxAltitudeM],
  ];
  for (const [name, value] of positive) {
    if (!(value > 0) || !Number.isFinite(value)) throw new TypeError(`${id}: ${name} must be a finite number > 0, got ${value}`);
  }
  const { battery } = config;
  if (!(battery.criticalPct < battery.lowPct && battery.lowPct <= 100 && battery.criticalPct >= 0)) {
    throw new TypeError(`${id}: battery thresholds need 0 <= criticalPct < lowPct <= 100`);
  }
  if (!(battery.initialPct > 0 && battery.initialPct <= 100)) throw new TypeError(`${id}: battery.initialPct must be in (0, 100]`);
  if (config.minFlightAltitudeM >= config.geofence.maxAltitudeM) throw new TypeError(`${id}: minFlightAltitudeM must be below the geofence ceiling`);
  if (!(config.linkLossHoldMs >= 0)) throw new TypeError(`${id}: linkLossHoldMs must be >= 0`);
}
