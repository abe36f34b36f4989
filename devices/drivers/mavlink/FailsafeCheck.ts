/**
 * The check at connect that the vehicle's own link-loss failsafe agrees with the
 * adapter's safety model (docs/devices.md, "MAVLink"). The adapter stops the vehicle
 * when the operator goes (its watchdog); the vehicle must stop itself when the adapter
 * goes. So these ArduPilot parameters are read and must be:
 *
 * | parameter       | must be                          | why |
 * |---|---|---|
 * | `SYSID_MYGCS`   | the adapter's GCS system id      | the vehicle counts only its GCS's heartbeats: with another id, the adapter's would not keep it from its failsafe, nor would their loss trigger it |
 * | `FS_GCS_ENABLE` | 1 RTL, 3 SmartRTL/RTL, 4 SmartRTL/Land, 5 Land or 7 Brake/Land | 0 is no failsafe at all, and 2 and 6 carry on a mission without anyone watching |
 * | `FS_GCS_TIMEOUT`| ≤ `maxGcsTimeoutS` (default 5 s) | how long a vehicle flies on with nobody connected |
 * | `GUID_TIMEOUT`  | ≤ `maxGuidedTimeoutS` (default 3 s) | how long the last velocity setpoint lasts without a new one |
 *
 * A vehicle that fails the check is faulted at the adapter: it refuses to arm and says
 * which parameter to set, and the room sees the fault.
 *
 * @example
 *   const problems = checkFailsafeParameters({ SYSID_MYGCS: 255, FS_GCS_ENABLE: 5, FS_GCS_TIMEOUT: 5, GUID_TIMEOUT: 3 }, limits);
 *   // [] when all agree; else ["FS_GCS_ENABLE is 0 (disabled): set 5 (land) ..."]
 */
import { common, type MavLinkData } from "node-mavlink";
import type { CommandLink } from "./CommandSender.ts";
import type { MavlinkIds } from "./MavlinkLink.ts";

export const FAILSAFE_PARAMETERS = ["SYSID_MYGCS", "FS_GCS_ENABLE", "FS_GCS_TIMEOUT", "GUID_TIMEOUT"] as const;
export type FailsafeParameter = (typeof FAILSAFE_PARAMETERS)[number];

/** FS_GCS_ENABLE values that end in a stopped or landed vehicle, and what each does. */
export const SAFE_GCS_FAILSAFE_ACTIONS: Readonly<Record<number, string>> = {
  1: "return to launch",
  3: "SmartRTL, else RTL",
  4: "SmartRTL, else land",
  5: "land",
  7: "brake, else land",
};

export interface FailsafeLimits {
  gcsSystemId: number;
  maxGcsTimeoutS: number;
  maxGuidedTimeoutS: number;
}

/** What is wrong with the vehicle's failsafe parameters, one line each; [] when they agree. */
export function checkFailsafeParameters(values: Partial<Record<FailsafeParameter, number>>, limits: FailsafeLimits): string[] {
  const problems: string[] = [];
  const missing = FAILSAFE_PARAMETERS.filter((name) => values[name] === undefined);
  if (missing.length > 0) problems.push(`the vehicle did not report ${missing.join(", ")}: is it an ArduPilot Copter 4.1 or later?`);
  const { SYSID_MYGCS: gcs, FS_GCS_ENABLE: action, FS_GCS_TIMEOUT: timeout, GUID_TIMEOUT: guided } = values;
  if (gcs !== undefined && gcs !== limits.gcsSystemId) {
    problems.push(`SYSID_MYGCS is ${gcs} but this adapter's GCS system id is ${limits.gcsSystemId}: set one to the other, or the vehicle ignores the adapter's heartbeats`);
  }
  if (action !== undefined && SAFE_GCS_FAILSAFE_ACTIONS[action] === undefined) {
    const allowed = Object.entries(SAFE_GCS_FAILSAFE_ACTIONS).map(([value, what]) => `${value} (${what})`).join(", ");
    problems.push(`FS_GCS_ENABLE is ${action}${action === 0 ? " (disabled)" : ""}: set one of ${allowed}`);
  }
  if (timeout !== undefined && !(timeout > 0 && timeout <= limits.maxGcsTimeoutS)) {
    problems.push(`FS_GCS_TIMEOUT is ${timeout} s: set at most ${limits.maxGcsTimeoutS} s, so a vehicle whose adapter is gone stops soon`);
  }
  if (guided !== undefined && !(guided > 0 && guided <= limits.maxGuidedTimeoutS)) {
    problems.push(`GUID_TIMEOUT is ${guided} s: set at most ${limits.maxGuidedTimeoutS} s, so a velocity setpoint never outlives the adapter by more`);
  }
  return problems;
}

/**
 * Reads parameters by name with PARAM_REQUEST_READ, asking again for the ones not yet
 * answered every `intervalMs`, up to `attempts` rounds or until `signal` aborts.
 * Resolves with what came back.
 */
export async function readParameters(
  link: CommandLink, target: MavlinkIds, names: readonly string[], options: { intervalMs: number; attempts: number; signal?: AbortSignal },
): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  const unsubscribe = link.onMessage((message: MavLinkData) => {
    if (!(message instanceof common.ParamValue)) return;
    const name = String(message.paramId).replace(/\0+$/, "");
    if (names.includes(name)) values[name] = message.paramValue;
  });
  try {
    for (let round = 0; round < options.attempts && !options.signal?.aborted; round++) {
      const missing = names.filter((name) => values[name] === undefined);
      if (missing.length === 0) break;
      for (const name of missing) {
        const request = new common.ParamRequestRead();
        request.targetSystem = target.systemId;
        request.targetComponent = target.componentId;
        request.paramId = name;
        request.paramIndex = -1;
        link.send(request);
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
  } finally {
    unsubscribe();
  }
  return values;
}
