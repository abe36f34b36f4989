/**
 * The adapter CLI's arguments (main.ts), parsed and checked apart from the process so
 * the rules are testable. Every problem is an ArgsError naming the flag to fix; main.ts
 * prints it with the usage and exits 2.
 *
 * @example
 *   const args = parseAdapterArgs(["--device", "ex-1", "--driver", "sim-excavator", "--node", "http://127.0.0.1:2567"], process.env);
 *   // { deviceId: "ex-1", driver: "sim-excavator", nodes: [...], credential: { secret }, telemetryHz: 20, logLevel: "info", help: false }
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { DEVICE_ID_PATTERN, DEVICE_ID_TEXT } from "../../proto/ids.ts";
import { nodeUrls } from "../../common/nodeUrl.ts";
import { LOG_FORMATS, type LogFormat } from "../../common/logOutput.ts";
import { driverNames, isDriverName, type DriverName } from "../drivers/index.ts";
import type { AdapterCredential } from "./types.ts";
import { PEM_CERTIFICATE_PATTERN, PEM_PRIVATE_KEY_PATTERN } from "./options.ts";
import { resolveSecret, SecretError } from "../../common/secrets.ts";

export const usage = `usage: npm run adapter -- --device ID --driver ${driverNames.join("|")} --node URL [--node URL ...]
                       [--secret-file FILE | --token-file FILE | --cert FILE --key FILE] [--ca FILE] [--dev]
                       [--driver-config FILE] [--telemetry-hz N] [--status-port N] [--camera sim|off]
                       [--log-level LEVEL] [--log-format F]

  --device ID         the enrolled device id ([A-Za-z0-9_.-]{1,64})
  --driver NAME       the device driver: ${driverNames.join(", ")}
  --driver-config FILE
                      the driver's settings as a JSON object: required by mavlink
                      ({ "endpoint": "udpout:HOST:PORT", ... }, docs/devices.md); the
                      simulated drivers take none
  --node URL          a region node's base URL (https://host:port); repeat for several,
                      the nearest one (by /ping round trip) is used
  --secret-file FILE  a file holding the device secret from enrolment, 64 hex characters
                      (default: environment TSUNAGI_DEVICE_SECRET_FILE or TSUNAGI_DEVICE_SECRET)
  --token-file FILE   a file holding a device token, instead of the secret
                      (default: environment TSUNAGI_DEVICE_TOKEN_FILE or TSUNAGI_DEVICE_TOKEN)
  --secret HEX, --token JWT
                      the same on the command line, where any user of the machine can
                      read them (ps): accepted with a warning
  --cert FILE, --key FILE
                      certificate mode: the device certificate and its key from
                      npm run devices -- issue-cert (PEM); the adapter connects to the
                      node's certificate listener with them (mTLS), instead of a secret
  --ca FILE           PEM CA certificates the nodes' and gateways' TLS certificates must
                      chain to (default: the system's CAs)
  --dev               dev mode: allow plain http:// nodes and ws:// gateways (a loopback
                      dev node, npm start). Never on a real machine: anyone on the path
                      could read the channel
  --telemetry-hz N    telemetry rate, Hz (default 20)
  --camera sim|off    sim: send the machine's camera as a synthetic test pattern (ffmpeg,
                      H.264) where its room says (CameraTarget); off (default): no camera
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
  /** The --driver-config file's JSON object (checked by the driver itself); {} without one. */
  driverOptions: Record<string, unknown>;
  nodes: string[];
  credential: AdapterCredential;
  /** The --ca file's PEM text; undefined: the system's CAs. */
  ca: string | undefined;
  /** --dev: plain http:// and ws:// allowed. */
  devMode: boolean;
  telemetryHz: number;
  /** Port of the local status endpoint on 127.0.0.1 (0: any free port); undefined: none. */
  statusPort: number | undefined;
  logLevel: string;
  logFormat: LogFormat;
  /** --camera: "sim" sends a synthetic test pattern where the room says; "off" none. */
  camera: "sim" | "off";
  /** TSUNAGI_ADAPTER_PARENT_PID: the process whose death stops the device and ends this one; undefined: none. */
  parentPid?: number;
  /** --help: print the usage and exit 0 (the other fields are then not checked and are placeholders). */
  help: boolean;
  /** Problems that do not stop the adapter (a secret given as a flag), logged at start. */
  warnings: string[];
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
/** The flags that give a credential; any of them overrides the environment's. */
const CREDENTIAL_FLAGS = ["secret", "secret-file", "token", "token-file"];

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
        "driver-config": { type: "string" },
        node: { type: "string", multiple: true },
        secret: { type: "string" },
        "secret-file": { type: "string" },
        token: { type: "string" },
        "token-file": { type: "string" },
        ca: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        dev: { type: "boolean" },
        "telemetry-hz": { type: "string" },
        "status-port": { type: "string" },
        camera: { type: "string" },
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
    return { deviceId: "", driver: driverNames[0], driverOptions: {}, nodes: [], credential: { token: "-" }, ca: undefined, devMode: false, telemetryHz: 20, statusPort: undefined, logLevel: "info", logFormat: "auto", camera: "off", help: true, warnings: [] };
  }

  const deviceId = values.device as string | undefined;
  if (deviceId === undefined) throw new ArgsError("--device is required (the enrolled device id)");
  if (!DEVICE_ID_PATTERN.test(deviceId)) throw new ArgsError(`--device ${JSON.stringify(deviceId)} must match ${DEVICE_ID_TEXT}`);

  const driver = values.driver as string | undefined;
  if (driver === undefined) throw new ArgsError(`--driver is required: ${driverNames.join(" or ")}`);
  if (!isDriverName(driver)) throw new ArgsError(`--driver ${JSON.stringify(driver)} is not a driver; valid drivers: ${driverNames.join(", ")}`);

  const driverOptions = readDriverConfig(values["driver-config"] as string | undefined);

  const nodes = (values.node as string[] | undefined) ?? [];
  if (nodes.length === 0) throw new ArgsError("--node is required (a region node's https://host:port; repeat for several)");
  try {
    nodeUrls(nodes);
  } catch (error) {
    throw new ArgsError(`--node ${(error as Error).message}`);
  }
  const devMode = values.dev === true;
  const plain = nodes.find((node) => !node.startsWith("https://"));
  if (plain !== undefined && !devMode) {
    throw new ArgsError(`--node ${plain} is plain http://: outside dev mode an adapter reaches its region over https:// only (--dev for a loopback dev node)`);
  }
  const caFile = values.ca as string | undefined;
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, "utf8");
    } catch (error) {
      throw new ArgsError(`--ca ${caFile}: ${(error as Error).message}`);
    }
    if (!PEM_CERTIFICATE_PATTERN.test(ca)) throw new ArgsError(`--ca ${caFile} holds no PEM certificate`);
  }

  const warnings: string[] = [];
  const credential = certificateCredential(values) ?? resolveCredential(values, env, warnings);

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

  const camera = (values.camera as string | undefined) ?? "off";
  if (camera !== "sim" && camera !== "off") throw new ArgsError(`--camera ${JSON.stringify(camera)} must be sim or off`);

  const parentText = env.TSUNAGI_ADAPTER_PARENT_PID || undefined;
  const parentPid = parentText === undefined ? undefined : Number(parentText);
  if (parentPid !== undefined && !(Number.isInteger(parentPid) && parentPid > 1)) {
    throw new ArgsError(`TSUNAGI_ADAPTER_PARENT_PID ${JSON.stringify(parentText)} must be a process id above 1`);
  }
  return { deviceId, driver, driverOptions, nodes, credential, ca, devMode, telemetryHz, statusPort, logLevel, logFormat: logFormat as LogFormat, camera, parentPid, help: false, warnings };
}

/** --cert and --key (certificate mode), or undefined when neither is given; alone or beside a secret or token they are refused. */
function certificateCredential(values: Record<string, unknown>): AdapterCredential | undefined {
  const certFile = values.cert as string | undefined;
  const keyFile = values.key as string | undefined;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) throw new ArgsError("--key needs --cert: the device certificate it belongs to");
  if (keyFile === undefined) throw new ArgsError("--cert needs --key: the certificate's private key (ID.key beside ID.crt)");
  const other = CREDENTIAL_FLAGS.find((name) => values[name] !== undefined);
  if (other) throw new ArgsError(`--cert and --${other} both give a credential: give a certificate, a device secret or a device token, not two`);
  const read = (flag: string, file: string, pattern: RegExp, what: string) => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new ArgsError(`${flag} ${file}: ${(error as Error).message}`);
    }
    if (!pattern.test(text)) throw new ArgsError(`${flag} ${file} holds no PEM ${what}`);
    return text;
  };
  return {
    certificate: {
      cert: read("--cert", certFile, PEM_CERTIFICATE_PATTERN, "certificate"),
      key: read("--key", keyFile, PEM_PRIVATE_KEY_PATTERN, "private key"),
    },
  };
}

/** Flags win over the environment; exactly one mode must remain. */
function resolveCredential(values: Record<string, unknown>, env: Record<string, string | undefined>, warnings: string[]): AdapterCredential {
  const text = (name: string) => values[name] as string | undefined;
  let secret: ReturnType<typeof resolveSecret>;
  let token: ReturnType<typeof resolveSecret>;
  try {
    // A flag of either mode overrides both variables: the command line says which mode is meant.
    const fromEnv = CREDENTIAL_FLAGS.some((name) => text(name) !== undefined) ? {} : env;
    secret = resolveSecret("device secret", {
      flag: text("secret"), flagName: "--secret", file: text("secret-file"), fileName: "--secret-file",
      env: fromEnv.TSUNAGI_DEVICE_SECRET, envName: "TSUNAGI_DEVICE_SECRET", envFile: fromEnv.TSUNAGI_DEVICE_SECRET_FILE, envFileName: "TSUNAGI_DEVICE_SECRET_FILE",
    });
    token = resolveSecret("device token", {
      flag: text("token"), flagName: "--token", file: text("token-file"), fileName: "--token-file",
      env: fromEnv.TSUNAGI_DEVICE_TOKEN, envName: "TSUNAGI_DEVICE_TOKEN", envFile: fromEnv.TSUNAGI_DEVICE_TOKEN_FILE, envFileName: "TSUNAGI_DEVICE_TOKEN_FILE",
    });
  } catch (error) {
    if (error instanceof SecretError) throw new ArgsError(error.message);
    throw error;
  }
  if (secret.secret !== undefined && token.secret !== undefined) {
    throw new ArgsError(`${secret.source} and ${token.source} both give a credential: give a device secret or a device token, not both`);
  }
  if (secret.secret !== undefined) {
    if (!SECRET_PATTERN.test(secret.secret)) throw new ArgsError(`${secret.source} must be the 64 hex characters issued at enrolment`);
    if (secret.warning) warnings.push(secret.warning);
    return { secret: secret.secret };
  }
  if (token.secret !== undefined) {
    if (token.warning) warnings.push(token.warning);
    return { token: token.secret };
  }
  throw new ArgsError("a credential is required: --secret-file FILE (or TSUNAGI_DEVICE_SECRET_FILE, TSUNAGI_DEVICE_SECRET), or --token-file FILE (or TSUNAGI_DEVICE_TOKEN_FILE, TSUNAGI_DEVICE_TOKEN)");
}

/** The --driver-config file as a JSON object; {} without one. */
function readDriverConfig(file: string | undefined): Record<string, unknown> {
  if (file === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new ArgsError(`--driver-config ${file}: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new ArgsError(`--driver-config ${file} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}
