/**
 * Certificate mode (issue 11, device certificates): a node with a device CA made at test
 * time runs its certificate listener (mTLS). A device with a certificate of that CA
 * attaches and is driven; one with a self-signed, expired, revoked or other device's
 * certificate, or none, gets its coded refusal; revoking the certificate of a connected
 * device cuts it off within the revalidation period.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import WebSocket from "ws";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { httpRequest } from "../../common/httpRequest.ts";
import { decodeEnvelope, encodeEnvelope, ErrorCode, type Envelope } from "../../proto/index.ts";
import { DeviceCa, type IssuedCertificate } from "../../server/auth/DeviceCa.ts";
import { DeviceCertificates, RedisCertificateRegistry } from "../../server/auth/DeviceCertificates.ts";
import { buildCertificate, newKeyPair, privateKeyPem, randomSerial } from "../../server/auth/x509.ts";
import { startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { enrollDevices, joinTeleop, joint, startAdapter, type AdapterProcess } from "../fixtures/teleop.ts";
import { testRedisUrl } from "../fixtures/redis.ts";
import { makeTestPki, type TestPki } from "../fixtures/tls.ts";

const redisUrl = testRedisUrl();
const clusterName = `certs-${randomUUID().slice(0, 8)}`;
const ROOM = "site-certs";
const EXCAVATOR = "ex-cert";
const OTHER = "ex-cert-other";
const REVOKED_LIVE = "ex-cert-live";
const REVALIDATE_MS = 300;

let pki: TestPki;
let dir: string;
let ca: DeviceCa;
let redis: Redis;
let certificates: DeviceCertificates;
let node: NodeProcess;
let certUrl: string;

/** Issues and records a certificate; writes its files for an adapter. */
async function issue(deviceId: string, options?: Parameters<DeviceCa["issue"]>[1]): Promise<IssuedCertificate & { certFile: string; keyFile: string }> {
  const issued = ca.issue(deviceId, options);
  await certificates.recordIssued(issued);
  const certFile = path.join(dir, `${deviceId}-${issued.serial}.crt`);
  const keyFile = path.join(dir, `${deviceId}-${issued.serial}.key`);
  writeFileSync(certFile, issued.certPem);
  writeFileSync(keyFile, issued.keyPem, { mode: 0o600 });
  return { ...issued, certFile, keyFile };
}

/**
 * Connects to `url` with `client` (or no client certificate), answers the challenge with
 * a certificate-mode hello for `deviceId`; resolves with the Error code (0: welcomed) and
 * the close code.
 */
function attempt(url: string, deviceId: string, client?: { cert: string; key: string }): Promise<{ code: number; closeCode: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ca: pki.ca, ...(client ?? {}) });
    let code = -1;
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no answer from ${url} for ${deviceId}`)); }, 10_000);
    ws.on("message", (data) => {
      const envelope: Envelope = decodeEnvelope(new Uint8Array(data as Buffer));
      if (envelope.body === "deviceChallenge") ws.send(encodeEnvelope({ correlationId: 7, deviceHello: { deviceId, adapterVersion: "1.0.0", driver: "test", clientCertificate: {} } }));
      else if (envelope.body === "error") code = envelope.error!.code!;
      else if (envelope.body === "deviceWelcome") { code = 0; ws.close(1000); }
    });
    ws.on("error", () => { /* the close reports it */ });
    ws.on("close", (closeCode) => { clearTimeout(timer); resolve({ code, closeCode }); });
  });
}

beforeAll(async () => {
  pki = makeTestPki();
  dir = mkdtempSync(path.join(tmpdir(), "tsunagi-device-ca-"));
  const made = DeviceCa.create();
  writeFileSync(path.join(dir, "ca.crt"), made.certPem);
  ca = DeviceCa.load(made.certPem, made.keyPem);
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  certificates = new DeviceCertificates(new RedisCertificateRegistry(redis, `${clusterName}:`));
  await enrollDevices(redisUrl, clusterName, [[EXCAVATOR, "excavator"], [OTHER, "excavator"], [REVOKED_LIVE, "excavator"]]);
  node = await startNode({
    regionId: "jp-tokyo", redisUrl, clusterName,
    extraArgs: [
      "--gateway-cert-file", pki.certFile, "--gateway-key-file", pki.keyFile, "--gateway-device-ca-file", path.join(dir, "ca.crt"),
      "--gateway-cert-port", "0", "--gateway-revalidate-ms", String(REVALIDATE_MS),
    ],
  });
  const gateway = JSON.parse((await httpRequest(`${node.httpUrl}/gateway`)).text);
  certUrl = gateway.certUrl;
}, 60_000);

afterAll(async () => {
  await node?.stop();
  const keys = await redis?.keys(`${clusterName}:*`).catch(() => []);
  if (keys?.length) await redis.del(...keys);
  redis?.disconnect();
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("device certificates", () => {
  it("GET /gateway names the certificate listener beside the secret one", () => {
    expect(certUrl).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/device$/);
  });

  it("a device with a certificate of the cluster's CA attaches over mTLS and is driven by an operator", { timeout: 60_000 }, async () => {
    const issued = await issue(EXCAVATOR);
    let adapter: AdapterProcess | undefined;
    let supervisor: RoomSession | undefined;
    let session: RoomSession | undefined;
    let controls: OperatorControls | undefined;
    try {
      adapter = await startAdapter({ deviceId: EXCAVATOR, driver: "sim-excavator", nodes: [node.httpUrl], caFile: pki.caFile, extraArgs: ["--cert", issued.certFile, "--key", issued.keyFile] });
      const online = await adapter.waitForStatus((s) => s.state === "online", 20_000, "the excavator online with its certificate");
      expect(online.connection?.url).toBe(certUrl);
      supervisor = await joinTeleop(node, ROOM, "supervisor", { devices: [EXCAVATOR], sub: "site-supervisor" });
      await waitFor(() => supervisor!.deviceSnapshot(EXCAVATOR).lease?.online, 10_000, "the excavator online in the room");
      session = await joinTeleop(node, ROOM, "operator", { sub: "driver-cert" });
      controls = new OperatorControls(session, { deviceId: EXCAVATOR, rateHz: 50 });
      const applied = new Promise<void>((resolve) => controls!.on("ack", (ack) => { if (ack.status === 1) resolve(); }));
      await waitFor(() => controls!.profile, 5000, "the profile");
      await controls.acquire();
      controls.start();
      controls.setAxes({ boom: 0.2 });
      await applied;
      await adapter.waitForStatus((s) => Math.abs(joint(s, "boom").velocity - 0.2) < 1e-6, 10_000, "the boom moving");
    } finally {
      controls?.stop();
      controls?.dispose();
      await session?.leave().catch(() => {});
      await supervisor?.leave().catch(() => {});
      await adapter?.stop();
    }
  });

  it("refuses a self-signed, expired, revoked, other device's or missing certificate, each with its code", { timeout: 30_000 }, async () => {
    const good = await issue(EXCAVATOR);
    expect(await attempt(certUrl, EXCAVATOR, { cert: good.certPem, key: good.keyPem })).toEqual({ code: 0, closeCode: 1000 });

    const keys = newKeyPair();
    const now = Date.now();
    const selfSigned = buildCertificate({ subject: EXCAVATOR, issuer: EXCAVATOR, serial: randomSerial(), publicKey: keys.publicKey, signingKey: keys.privateKey, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), ca: false });
    expect(await attempt(certUrl, EXCAVATOR, { cert: selfSigned, key: privateKeyPem(keys.privateKey) })).toEqual({ code: ErrorCode.CERTIFICATE_UNTRUSTED, closeCode: 1008 });

    const expired = await issue(EXCAVATOR, { notBefore: new Date(now - 2 * 86_400_000), notAfter: new Date(now - 86_400_000) });
    expect(await attempt(certUrl, EXCAVATOR, { cert: expired.certPem, key: expired.keyPem })).toEqual({ code: ErrorCode.CERTIFICATE_EXPIRED, closeCode: 1008 });

    const revoked = await issue(EXCAVATOR);
    await certificates.revoke(revoked.serial);
    expect(await attempt(certUrl, EXCAVATOR, { cert: revoked.certPem, key: revoked.keyPem })).toEqual({ code: ErrorCode.CERTIFICATE_REVOKED, closeCode: 1008 });

    const other = await issue(OTHER);
    expect(await attempt(certUrl, EXCAVATOR, { cert: other.certPem, key: other.keyPem })).toEqual({ code: ErrorCode.CERTIFICATE_MISMATCH, closeCode: 1008 });

    expect(await attempt(certUrl, EXCAVATOR)).toEqual({ code: ErrorCode.CERTIFICATE_MISSING, closeCode: 1008 });
    // The secret listener sees no client certificate: it says where to go.
    expect(await attempt(node.gatewayUrl, EXCAVATOR, { cert: good.certPem, key: good.keyPem })).toEqual({ code: ErrorCode.CERTIFICATE_MISSING, closeCode: 1008 });

    const metrics = (await httpRequest(`${node.httpUrl}/metrics`)).text;
    for (const name of ["CERTIFICATE_UNTRUSTED", "CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED", "CERTIFICATE_MISMATCH", "CERTIFICATE_MISSING"]) {
      expect(metrics).toMatch(new RegExp(`tsunagi_errors_total\\{[^}]*code="${name}"[^}]*\\} [1-9]`));
    }
  });

  it("cuts off a connected device within the revalidation period once its certificate is revoked", { timeout: 40_000 }, async () => {
    const issued = await issue(REVOKED_LIVE);
    const adapter = await startAdapter({ deviceId: REVOKED_LIVE, driver: "sim-excavator", nodes: [node.httpUrl], caFile: pki.caFile, extraArgs: ["--cert", issued.certFile, "--key", issued.keyFile] });
    try {
      await adapter.waitForStatus((s) => s.state === "online", 20_000, "online with its certificate");
      const revokedAt = Date.now();
      expect(await certificates.revoke(REVOKED_LIVE)).toEqual([issued.serial]);
      await adapter.waitForStatus((s) => s.state !== "online" && (s.counters.errors.CERTIFICATE_REVOKED ?? 0) > 0, 10_000, "cut off with CERTIFICATE_REVOKED");
      // Revalidation runs every REVALIDATE_MS; the rest is the adapter's status poll and process scheduling.
      expect(Date.now() - revokedAt).toBeLessThan(REVALIDATE_MS + 5000);
    } finally {
      await adapter.stop();
    }
  });
});
