/**
 * Where the MAVLink driver reaches its vehicle, in the address forms MAVProxy, pymavlink
 * and mavlink-router use:
 *
 * - `udpin:HOST:PORT`: listen on HOST:PORT; the vehicle (or a telemetry radio's bridge,
 *   or mavlink-router) sends to it, and the driver answers to wherever the vehicle's
 *   packets come from. ArduPilot SITL's `--out udp:HOST:14550` and a companion
 *   computer's router talk to this side.
 * - `udpout:HOST:PORT`: send to HOST:PORT from a free local port; the vehicle answers to
 *   that port. ArduPilot SITL's UDP server ports and MAVESP8266 are this side.
 *
 * A serial flight controller is reached through mavlink-router (serial to UDP) on the
 * companion computer: see docs/devices.md.
 *
 * @example
 *   parseMavlinkEndpoint("udpout:127.0.0.1:14555");   // { mode: "udpout", host: "127.0.0.1", port: 14555 }
 *   parseMavlinkEndpoint("udpin:0.0.0.0:14550");      // { mode: "udpin", host: "0.0.0.0", port: 14550 }
 */
import { isIP } from "node:net";

export interface MavlinkEndpoint {
  mode: "udpin" | "udpout";
  host: string;
  port: number;
}

export const ENDPOINT_FORMS = "udpin:HOST:PORT (listen) or udpout:HOST:PORT (send to)";

/** Parses an endpoint; throws a TypeError naming the forms accepted. */
export function parseMavlinkEndpoint(text: string): MavlinkEndpoint {
  const match = /^(udpin|udpout):(.+):(\d{1,5})$/.exec(text);
  if (!match) throw new TypeError(`MAVLink endpoint ${JSON.stringify(text)} is not ${ENDPOINT_FORMS}`);
  const [, mode, rawHost, portText] = match;
  const host = rawHost!.replace(/^\[(.*)\]$/, "$1");
  const port = Number(portText);
  if (!isIP(host)) throw new TypeError(`MAVLink endpoint ${JSON.stringify(text)}: ${host} is not an IP address`);
  if (port > 65535 || (mode === "udpout" && port === 0)) throw new TypeError(`MAVLink endpoint ${JSON.stringify(text)}: port ${port} is out of range`);
  return { mode: mode as MavlinkEndpoint["mode"], host, port };
}
