/**
 * The `etcd` settings checked (config.ts calls etcdProblems once at start) and turned
 * into the session's TLS material. Every hop is TLS (DESIGN.md, "Security posture"):
 * an http:// endpoint is accepted on a loopback address only (tests; a local proxy that
 * speaks TLS onwards); https:// trusts `caFile`, else the system's CAs, and presents
 * `certFile`/`keyFile` when etcd asks for client certificates.
 */
import { readFileSync } from "node:fs";
import { isLoopbackHost } from "../../tls.ts";

export interface EtcdSettings {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  callTimeoutMs: number;
}

/** What is wrong with the etcd settings, one line each (empty when nothing is). */
export function etcdProblems(etcd: EtcdSettings, redisUrl: string | undefined): string[] {
  const problems: string[] = [];
  const files: Array<[string, string | undefined]> = [["etcd.caFile", etcd.caFile], ["etcd.certFile", etcd.certFile], ["etcd.keyFile", etcd.keyFile]];
  for (const [name, file] of files) {
    if (!file) continue;
    try { readFileSync(file); } catch (error) { problems.push(`${name}: cannot read ${file}: ${(error as Error).message}`); }
  }
  if (Boolean(etcd.certFile) !== Boolean(etcd.keyFile)) problems.push("etcd.certFile and etcd.keyFile: give both or neither");
  if (etcd.endpoints.length === 0) {
    if (files.some(([, file]) => file)) problems.push("etcd.caFile, etcd.certFile, etcd.keyFile: set without etcd.endpoints");
    return problems;
  }
  if (!redisUrl) problems.push("etcd.endpoints: needs redisUrl too (the region's presence and matchmaking, device enrolment and audit stay in Redis)");
  const schemes = new Set(etcd.endpoints.map((url) => new URL(url).protocol));
  if (schemes.size > 1) problems.push("etcd.endpoints: all http:// or all https://, not both");
  for (const url of etcd.endpoints) {
    const { protocol, hostname } = new URL(url);
    if (protocol === "http:" && !isLoopbackHost(hostname.replace(/^\[|\]$/g, ""))) {
      problems.push(`etcd.endpoints: ${url} is plain text to another host; use https:// (every hop is TLS; http:// only to a loopback address)`);
    }
  }
  if (!schemes.has("https:") && files.some(([, file]) => file)) problems.push("etcd.caFile, etcd.certFile, etcd.keyFile: only for https:// endpoints");
  return problems;
}

/** The session's TLS material: undefined for http:// endpoints, else the CA (absent: the system's) and the client pair. */
export function etcdCredentials(etcd: EtcdSettings): { rootCertificate?: Buffer; privateKey?: Buffer; certChain?: Buffer } | undefined {
  if (!etcd.endpoints.some((url) => url.startsWith("https:"))) return undefined;
  return {
    rootCertificate: etcd.caFile ? readFileSync(etcd.caFile) : undefined,
    privateKey: etcd.keyFile ? readFileSync(etcd.keyFile) : undefined,
    certChain: etcd.certFile ? readFileSync(etcd.certFile) : undefined,
  };
}
