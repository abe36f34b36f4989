/**
 * The voice settings (`voice` in the node's configuration, server/config.ts): whether the
 * node runs a Janus for its rooms' voice, where its APIs listen, its media ports, and how
 * long a grant admits its holder.
 */
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import { z } from "zod";
import { isLoopbackHost } from "../tls.ts";
import { MAX_GRANT_TTL_MS } from "./VoiceBackend.ts";

/** A loopback or private address (RFC 1918, IPv6 unique-local): Janus' APIs never listen anywhere else. */
export function isPrivateAddress(host: string): boolean {
  if (isLoopbackHost(host)) return true;
  if (isIP(host) === 4) {
    const [a, b] = host.split(".").map(Number) as [number, number];
    return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
  }
  return isIP(host) === 6 && /^f[cd][0-9a-f]{2}:/i.test(host);
}

/** A loopback interface or address: Janus 1.1.2 never gathers media candidates there (it skips loopback interfaces). */
const LOOPBACK_MEDIA = /(^|,)\s*(lo|127\.[\d.]*|::1|localhost)\s*(?=,|$)/;

/** Why `mediaInterfaces` cannot work, or undefined. */
export function mediaInterfacesProblem(mediaInterfaces: string): string | undefined {
  if (!LOOPBACK_MEDIA.test(mediaInterfaces)) return undefined;
  return "Janus 1.1.2 gathers no media candidate on a loopback interface (it would gather on every other one instead): name this machine's own address or interface (tests: machineAddress())";
}

/**
 * This machine's first address that is not loopback (IPv4): where media goes when
 * everything runs on one machine (tests, benches); the kernel delivers it locally.
 */
export function machineAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === "IPv4" && !address.internal) return address.address;
  }
  throw new Error("this machine has no IPv4 address besides loopback, and Janus 1.1.2 gathers no media candidate on loopback");
}

/** A Janus API address a node may use: ws(s):// on a loopback or private host. */
function janusUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `not a URL: ${JSON.stringify(url.slice(0, 80))}`;
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") return "a ws:// or wss:// URL";
  if (!isPrivateAddress(parsed.hostname.replace(/^\[(.*)\]$/, "$1"))) return "on a loopback or private address (Janus' APIs are never reached over a public one)";
  return undefined;
}

export const voiceSettings = z.object({
  /** off: no voice; on: start Janus, and fail to start without it; auto: on when Janus is installed, else off (said in the log). */
  mode: z.enum(["off", "auto", "on"]),
  /** The address Janus' APIs listen on: loopback, or a private address. */
  host: z.string().refine(isPrivateAddress, "a loopback or private address (Janus' APIs never listen on a public one)"),
  /** Janus' media ports, "min-max". */
  rtpPortRange: z.string().regex(/^\d{4,5}-\d{4,5}$/, "min-max, e.g. 20000-40000").refine((range) => {
    const [min, max] = range.split("-").map(Number) as [number, number];
    return min >= 1024 && min < max && max <= 65535;
  }, "min below max, within 1024-65535"),
  /** Where Janus gathers media (ICE) candidates: interface names or address prefixes, comma-separated; "" for every interface. */
  mediaInterfaces: z.string().max(200).regex(/^[\w.:,-]*$/, "interface names or addresses, comma-separated")
    .superRefine((value, context) => {
      const problem = mediaInterfacesProblem(value);
      if (problem) context.addIssue({ code: "custom", message: problem });
    }),
  /** How long a voice grant admits its holder to its room, ms (at most 60 s). */
  grantTtlMs: z.number().int().min(1000).max(MAX_GRANT_TTL_MS),
  /** An external Janus' API (ws://host:port on a private address); "": the node starts its own. */
  janusUrl: z.string().max(300),
  /** The external Janus' Admin API. */
  janusAdminUrl: z.string().max(300),
  /** A file holding the external Janus' secrets as JSON: {"apiSecret", "adminSecret", "adminKey"}. */
  janusSecretsFile: z.string().max(1000),
}).superRefine((voice, context) => {
  if (!voice.janusUrl) {
    if (voice.janusAdminUrl || voice.janusSecretsFile) context.addIssue({ code: "custom", path: ["janusUrl"], message: "janusAdminUrl and janusSecretsFile go with janusUrl (an external Janus)" });
    return;
  }
  for (const key of ["janusUrl", "janusAdminUrl"] as const) {
    const problem = voice[key] ? janusUrlProblem(voice[key]) : "needed with janusUrl";
    if (problem) context.addIssue({ code: "custom", path: [key], message: problem });
  }
  if (!voice.janusSecretsFile) context.addIssue({ code: "custom", path: ["janusSecretsFile"], message: "needed with janusUrl: the external Janus' api secret, admin secret and admin key" });
});

export const voiceDefaults: z.input<typeof voiceSettings> = {
  mode: "off",
  host: "127.0.0.1",
  rtpPortRange: "20000-40000",
  mediaInterfaces: "",
  janusUrl: "",
  janusAdminUrl: "",
  janusSecretsFile: "",
  grantTtlMs: 30_000,
};
