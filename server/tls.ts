/**
 * TLS on the node's hops (DESIGN.md, "Security posture"): which listeners use it and with
 * what files, the one rule for when it is required, and the URL schemes that follow from
 * it. A cluster is all TLS or all plain: peers are reached with the scheme this node serves.
 *
 * @example
 *   const tls = listenerTls(config);       // { client?: TlsFiles; gateway?: TlsFiles }
 *   const url = `${httpScheme(config)}://${node.publicAddress}`;
 */
import { readFileSync } from "node:fs";
import { parseCertificate } from "./auth/x509.ts";

/** A certificate chain and its private key, PEM files. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** The TLS settings as configured (server/config.ts `tls` and `gateway`). */
export interface TlsSettings {
  host: string;
  devMode: boolean;
  tls: { certFile?: string; keyFile?: string; caFile?: string };
  gateway: { certFile?: string; keyFile?: string; deviceCaFile?: string };
}

/** Whether `host` is a loopback address: nothing off this machine can reach a listener bound to it. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The files of each listener; absent means plain. The gateway falls back to the node's. */
export function listenerTls(settings: Pick<TlsSettings, "tls" | "gateway">): { client?: TlsFiles; gateway?: TlsFiles } {
  const pair = (certFile?: string, keyFile?: string) => (certFile && keyFile ? { certFile, keyFile } : undefined);
  const client = pair(settings.tls.certFile, settings.tls.keyFile);
  return { client, gateway: pair(settings.gateway.certFile, settings.gateway.keyFile) ?? client };
}

/**
 * What is wrong with the TLS settings, one line each (empty when nothing is): a certificate
 * without its key (or the reverse), a file that cannot be read, and, outside dev mode on an
 * address other hosts can reach, a listener without TLS. A loopback-only node is exempt:
 * no hop of it crosses a network (tests; a TLS-terminating proxy on the same host).
 */
export function tlsProblems(settings: TlsSettings): string[] {
  const problems: string[] = [];
  const pairs: Array<[string, string | undefined, string | undefined]> = [
    ["tls", settings.tls.certFile, settings.tls.keyFile],
    ["gateway", settings.gateway.certFile, settings.gateway.keyFile],
  ];
  for (const [section, certFile, keyFile] of pairs) {
    if (Boolean(certFile) !== Boolean(keyFile)) problems.push(`${section}.certFile and ${section}.keyFile: give both or neither`);
  }
  const files: Array<[string, string | undefined]> = [
    ["tls.certFile", settings.tls.certFile], ["tls.keyFile", settings.tls.keyFile], ["tls.caFile", settings.tls.caFile],
    ["gateway.certFile", settings.gateway.certFile], ["gateway.keyFile", settings.gateway.keyFile],
    ["gateway.deviceCaFile", settings.gateway.deviceCaFile],
  ];
  for (const [name, file] of files) {
    if (!file) continue;
    try { readFileSync(file); } catch (error) { problems.push(`${name}: cannot read ${file}: ${(error as Error).message}`); }
  }
  const caFile = settings.gateway.deviceCaFile;
  if (caFile && !problems.some((problem) => problem.startsWith("gateway.deviceCaFile"))) {
    try {
      if (!parseCertificate(readFileSync(caFile, "utf8"), caFile).ca) problems.push(`gateway.deviceCaFile: ${caFile} is not a CA certificate (npm run devices -- init-ca makes one)`);
    } catch (error) {
      problems.push(`gateway.deviceCaFile: ${(error as Error).message}`);
    }
  }
  const { client, gateway } = listenerTls(settings);
  if (caFile && !gateway) {
    problems.push("gateway.deviceCaFile: the certificate listener is TLS, and needs the node's certificate and key (gateway.certFile and gateway.keyFile, or tls.certFile and tls.keyFile)");
  }
  if (!settings.devMode && !isLoopbackHost(settings.host)) {
    if (!client) problems.push(`tls.certFile and tls.keyFile: required outside dev mode on ${settings.host} (every hop is TLS; only a loopback-bound node may run without)`);
    else if (!gateway) problems.push("gateway.certFile and gateway.keyFile: required outside dev mode (every hop is TLS)");
  }
  return problems;
}

/** "https" when this node serves TLS, else "http": for its own URL and its peers'. */
export function httpScheme(settings: Pick<TlsSettings, "tls" | "gateway">): "https" | "http" {
  return listenerTls(settings).client ? "https" : "http";
}

/** "wss" when the gateway serves TLS, else "ws". */
export function gatewayScheme(settings: Pick<TlsSettings, "tls" | "gateway">): "wss" | "ws" {
  return listenerTls(settings).gateway ? "wss" : "ws";
}
