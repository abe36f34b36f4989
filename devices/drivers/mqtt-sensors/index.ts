/**
 * The MQTT sensors driver: CO2 and environmental monitors and BLE beacon receivers on a
 * site's MQTT broker, as readings, beacon fixes and area alerts.
 *
 * @example
 *   const sensors = new MqttSensors({ site: "site-7" });
 *   sensors.init();
 *   sensors.start();
 */
export { MqttSensors } from "./MqttSensors.ts";
export type { SensorsChange, SensorsCounters, SensorsTelemetry } from "./MqttSensors.ts";
export type { MqttSensorsOptions, SensorConfig } from "./options.ts";
export type { SensorsLogger } from "./RateLimitedLog.ts";
export type { AreaAlert, ThresholdOptions } from "./AreaAlerts.ts";
export type { BeaconFix } from "./BeaconFixes.ts";
export type { ReadingSnapshot } from "./SensorRegistry.ts";
export { sensorKinds, sensorKindNames, DEFAULT_THRESHOLDS } from "./limits.ts";
export type { AlertThreshold, SensorKind } from "./limits.ts";
export { beaconsTopic, readingTopic, sitePrefix, statusTopic } from "./topics.ts";
export { encodeBeaconSighting, malformedReasons } from "./payloads.ts";
export type { BeaconHeard, MalformedReason } from "./payloads.ts";
