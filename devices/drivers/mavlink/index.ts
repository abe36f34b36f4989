/** The MAVLink driver: real drones (ArduPilot Copter) over MAVLink v2 on UDP. */
export { MavlinkDrone } from "./MavlinkDrone.ts";
export type { MavlinkDroneOptions } from "./MavlinkDrone.ts";
export { MavlinkVehicle } from "./MavlinkVehicle.ts";
export { mavlinkConfigSchema, resolveMavlinkConfig } from "./config.ts";
export type { MavlinkConfig, MavlinkConfigInput } from "./config.ts";
export { parseMavlinkEndpoint } from "./endpoint.ts";
export { checkFailsafeParameters, SAFE_GCS_FAILSAFE_ACTIONS } from "./FailsafeCheck.ts";
