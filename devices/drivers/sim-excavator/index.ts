/** The simulated excavator driver: four joints and two tracks on the HAL. */
export { SimExcavator, jointNames, trackIds, defaultJointConfigs } from "./SimExcavator.ts";
export type { ExcavatorTelemetry, JointName, Pose, SimExcavatorOptions } from "./SimExcavator.ts";
export { SimJoint } from "./SimJoint.ts";
export type { JointConfig, JointState } from "./SimJoint.ts";
export { SimTrack } from "./SimTrack.ts";
