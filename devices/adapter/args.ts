/**
 * The adapter CLI's arguments (main.ts), parsed and checked apart from the process so
 * the rules are testable. Every problem is an ArgsError naming the flag to fix; main.ts
 * prints it with the usage and exits 2.
 *
 * @example
 *   const args = parseAdapterArgs(["--device", "ex-1", "--driver", "sim-excavator", "--node", "http://127.0.0.1:2567"], process.env);
 *   // { deviceId: "ex-1", driver: "sim-excavator", nodes: [...], credential: { secret }, telemetryHz: 20, logLevel: "info", help: false }
 */
import { parseArgs } from "node:util";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../../proto/ids.ts";
import { nodeUrls } from "../../common/nodeUrl.ts";
import { LOG_FORMATS, type LogFormat } from "../../common/logOutput.ts";
import { driverNames, isDriverName, type DriverName } from "../drivers/index.ts";
import type { AdapterCredential } from "./types.ts";

export const usage = `usage: npm run adapter -- --device ID --driver ${driverNames.join("|")} --node URL [--node URL ...]
                       [--secret HEX | --token JWT] [--telemetry-hz N] [--status-port N] [--log-level LEVEL] [--log-format F]

  --device ID         the enrolled device id ([A-Za-z0-9_.-]{1,64})
  --driver NAME       the device driver: ${driverNames.join(", ")}
  --node URL          a region node's HTTP base URL (http://host:port); repeat for several,
                      the nearest one (by /ping round trip) is used
  --secret HEX        the device secret from enrolment, 64 hex characters
                      (default: environment TSUNAGI_DEVICE_SECRET)
  --token JWT         a device token instead of the secret
                      (default: environment TSUNAGI_DEVICE_TOKEN)
  --telemetry-hz N    telemetry rate, Hz (default 20)
  --status-port N     serve GET /status and /healthz, and POST /estop (stop and latch),
                      on 127.0.0.1:N (0: any free port, printed at start). Default: none
  --log-level LEVEL   fatal, error, warn, info, debug, trace or silent (default info)
  --log-format F      json, pretty, or auto: pretty at a terminal, JSON otherwise (default auto)
  --help              print this and exit

  Environment TSUNAGI_ADAPTER_PARENT_PID=PID: the adapter is that process's child (the
  demo's): when that process is gone, it stops the device and exits.`;

export interface AdapterArgs {
  deviceId: string;
  driver: DriverName;
  nodes: string[];
  credential: AdapterCredential;
  telemetryHz: number;
  /** Port of the local status endpoint on 127.0.0.1 (0: any free port); undefined: none. */
  statusPort: number | undefined;
  logLevel: string;
  logFormat: LogFormat;
  /** TSUNAGI_ADAPTER_PARENT_PID: the process whose death stops the device and ends this one; undefined: none. */
  parentPid?: number;
  /** --help: print the usage and exit 0 (the other fields are then not checked and are placeholders). */
  help: boolean;
}

/** A command line the adapter cannot run with; the message names the flag. */
export class ArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ArgsError";
  }
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const SECRET_PATTERN = /^[0-9a-fA-F]{64}$/;

export function parseAdapterArgs(argv: string[], env: Record<string, string | undefined>): AdapterArgs {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        device: { type: "string" },
        driver: { type: "string" },
        node: { type: "string", multiple: true },
        secret: { type: "string" },
        token: { type: "string" },
        "telemetry-hz": { type: "string" },
        "status-port": { type: "string" },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (error) {
    // node:util's messages name the flag: "Unknown option '--nodes'", "Option '--device <value>' argument missing"
    throw new ArgsError((error as Error).message);
  }
  if (values.help) {
    return { deviceId: "", driver: driverNames[0], nodes: [], credential: { token: "-" }, telemetryHz: 20, statusPort: undefined, logLevel: "info", logFormat: "auto", help: true };
  }

  const deviceId = values.device as string | undefined;
  if (deviceId === undefined) throw new ArgsError("--device is required (the enrolled device id)");
  if (!DEVICE_ID_PATTERN.test(deviceId)) throw new ArgsError(`--device ${JSON.stringify(deviceId)} must match ${DEVICE_ID_TEXT}`);

  const driver = values.driver as string | undefined;
  if (driver === undefined) throw new ArgsError(`--driver is required: ${driverNames.join(" or ")}`);
  if (!isDriverName(driver)) throw new ArgsError(`--driver ${JSON.stringify(driver)} is not a driver; valid drivers: ${driverNames.join(", ")}`);

  const nodes = (values.node as string[] | undefined) ?? [];
  if (nodes.length === 0) throw new ArgsError("--node is required (a region node's http://host:port; repeat for several)");
  try {
    nodeUrls(nodes);
  } catch (error) {
    throw new ArgsError(`--node ${(error as Error).message}`);
  }

  const credential = resolveCredential(values.secret as string | undefined, values.token as string | undefined, env);

  const hzText = values["telemetry-hz"] as string | undefined;
  const telemetryHz = hzText === undefined ? 20 : Number(hzText);
  if (!(telemetryHz > 0 && telemetryHz <= 1000) || hzText?.trim() === "") throw new ArgsError(`--telemetry-hz ${JSON.stringify(hzText)} must be a number in (0, 1000]`);

  const portText = values["status-port"] as string | undefined;
  const statusPort = portText === undefined ? undefined : Number(portText);
  if (statusPort !== undefined && (!Number.isInteger(statusPort) || statusPort < 0 || statusPort > 65535 || portText!.trim() === "")) {
    throw new ArgsError(`--status-port ${JSON.stringify(portText)} must be a port number, 0 to 65535`);
  }

  const logLevel = (values["log-level"] as string | undefined) ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) throw new ArgsError(`--log-level ${JSON.stringify(logLevel)} must be one of ${LOG_LEVELS.join(", ")}`);

  const logFormat = (values["log-format"] as string | undefined) ?? "auto";
  if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) throw new ArgsError(`--log-format ${JSON.stringify(logFormat)} must be one of ${LOG_FORMATS.join(", ")}`);

  const parentText = env.TSUNAGI_ADAPTER_PARENT_PID || undefined;
  const parentPid = parentText === undefined ? undefined : Number(parentText);
  if (parentPid !== undefined && !(Number.isInteger(parentPid) && parentPid > 1)) {
    throw new ArgsError(`TSUNAGI_ADAPTER_PARENT_PID ${JSON.stringify(parentText)} must be a process id above 1`);
  }
  return { deviceId, driver, nodes, credential, telemetryHz, statusPort, logLevel, logFormat: logFormat as LogFormat, parentPid, help: false };
}

/** Flags win over the environment; exactly one mode must remain. */
function resolveCredential(secretFlag: string | undefined, tokenFlag: string | undefined, env: Record<string, string | undefined>): AdapterCredential {
  if (secretFlag !== undefined && tokenFlag !== undefined) throw new ArgsError("give --secret or --token, not both");
  const envSecret = env.TSUNAGI_DEVICE_SECRET || undefined;
  const envToken = env.TSUNAGI_DEVICE_TOKEN || undefined;
  let secret = secretFlag;
  let token = tokenFlag;
  let secretSource = "--secret";
  if (secret === undefined && token === undefined) {
    if (envSecret !== undefined && envToken !== undefined) {
      throw new ArgsError("both TSUNAGI_DEVICE_SECRET and TSUNAGI_DEVICE_TOKEN are set; unset one, or pass --secret or --token");
    }
    secret = envSecret;
    token = envToken;
    secretSource = "TSUNAGI_DEVICE_SECRET";
  }
  if (secret !== undefined) {
    if (!SECRET_PATTERN.test(secret)) throw new ArgsError(`${secretSource} must be the 64 hex characters issued at enrolment`);
    return { secret };
  }
  if (token !== undefined) {
    if (token === "") throw new ArgsError("--token must not be empty");
    return { token };
  }
  throw new ArgsError("a credential is required: --secret HEX (or TSUNAGI_DEVICE_SECRET), or --token JWT (or TSUNAGI_DEVICE_TOKEN)");
}
