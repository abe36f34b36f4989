/**
 * When a node must serve TLS (server/tls.ts, through loadConfig): outside dev mode on an
 * address other hosts can reach, every listener needs a certificate; the files must be
 * readable and come in pairs; the schemes follow.
 */
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../../server/config.ts";
import { gatewayScheme, httpScheme, isLoopbackHost, listenerTls } from "../../../server/tls.ts";
import { makeTestPki } from "../../fixtures/tls.ts";

const pki = makeTestPki();
afterAll(() => pki.remove());

const redis = ["--redis-url", "redis://127.0.0.1:1", "--auth-secret", "x".repeat(32)];
const issuesOf = (argv: string[]): string[] => {
  try {
    loadConfig({ argv, env: {} });
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.issues;
  }
};

describe("TLS settings", () => {
  it("refuses a node outside dev mode on a non-loopback address without TLS", () => {
    expect(issuesOf([...redis, "--host", "0.0.0.0"])).toEqual([expect.stringMatching(/^tls\.certFile and tls\.keyFile: required outside dev mode on 0\.0\.0\.0/)]);
    expect(issuesOf([...redis, "--host", "10.0.0.5"])).toHaveLength(1);
  });

  it("starts such a node with a certificate, and then serves https and wss", () => {
    const argv = [...redis, "--host", "0.0.0.0", "--tls-cert-file", pki.certFile, "--tls-key-file", pki.keyFile, "--tls-ca-file", pki.caFile];
    expect(issuesOf(argv)).toEqual([]);
    const config = loadConfig({ argv, env: {} });
    expect(listenerTls(config)).toEqual({ client: { certFile: pki.certFile, keyFile: pki.keyFile }, gateway: { certFile: pki.certFile, keyFile: pki.keyFile } });
    expect([httpScheme(config), gatewayScheme(config)]).toEqual(["https", "wss"]);
    expect(config.tls.caFile).toBe(pki.caFile);
  });

  it("lets a loopback-only node and a dev node run plain", () => {
    expect(issuesOf([...redis, "--host", "127.0.0.1"])).toEqual([]);
    expect(issuesOf(["--host", "127.0.0.1"])).toEqual([]);
    const config = loadConfig({ argv: [...redis, "--host", "127.0.0.1"], env: {} });
    expect([httpScheme(config), gatewayScheme(config)]).toEqual(["http", "ws"]);
  });

  it("gives the gateway its own certificate, or the node's", () => {
    const config = loadConfig({ argv: [...redis, "--gateway-cert-file", pki.certFile, "--gateway-key-file", pki.keyFile], env: {} });
    expect([httpScheme(config), gatewayScheme(config)]).toEqual(["http", "wss"]);
  });

  it("refuses half a pair and files it cannot read, naming the setting", () => {
    expect(issuesOf([...redis, "--tls-cert-file", pki.certFile])).toEqual(["tls.certFile and tls.keyFile: give both or neither"]);
    expect(issuesOf(["--gateway-key-file", pki.keyFile])).toEqual(["gateway.certFile and gateway.keyFile: give both or neither"]);
    expect(issuesOf(["--tls-ca-file", "/nonexistent/ca.pem"])).toEqual([expect.stringMatching(/^tls\.caFile: cannot read \/nonexistent\/ca\.pem/)]);
    expect(issuesOf([], )).toEqual([]);
  });

  it("knows loopback addresses", () => {
    expect(["127.0.0.1", "127.1.2.3", "::1", "localhost"].every(isLoopbackHost)).toBe(true);
    expect(["0.0.0.0", "10.0.0.5", "::", "tokyo-1.example.net", "127.0.0.1.example.net"].some(isLoopbackHost)).toBe(false);
  });
});
