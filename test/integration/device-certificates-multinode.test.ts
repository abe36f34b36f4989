/**
 * Certificate mode across a region of two nodes: an adapter with a device certificate
 * that reaches the node not hosting its room is sent to the room's node's certificate
 * listener (the directory's device claim names it), attaches there and is driven. A
 * redirect to the secret listener would be refused CERTIFICATE_MISSING for good.
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { httpRequest } from "../../common/httpRequest.ts";
import { DeviceCa } from "../../server/auth/DeviceCa.ts";
import { DeviceCertificates, RedisCertificateRegistry } from "../../server/auth/DeviceCertificates.ts";
import type { DeviceOwner } from "../../server/cluster/types.ts";
import { startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { driveOnce, enrollDevices, joinTeleop, startAdapter, type AdapterProcess } from "../fixtures/teleop.ts";
import { testRedisUrl } from "../fixtures/redis.ts";
import { makeTestPki, type TestPki } from "../fixtures/tls.ts";

const redisUrl = testRedisUrl();
const clusterName = `certs-multi-${randomUUID().slice(0, 8)}`;
const DEVICE = "ex-cert-far";
const SITE = "site-cert-far";

let pki: TestPki;
let dir: string;
let redis: Redis;
let nodes: NodeProcess[] = [];
let adapter: AdapterProcess | undefined;
const sessions: RoomSession[] = [];

beforeAll(async () => {
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  pki = makeTestPki();
  dir = mkdtempSync(path.join(tmpdir(), "tsunagi-device-ca-"));
  const made = DeviceCa.create();
  writeFileSync(path.join(dir, "ca.crt"), made.certPem);
  const ca = DeviceCa.load(made.certPem, made.keyPem);
  await enrollDevices(redisUrl, clusterName, [[DEVICE, "excavator"]]);
  const issued = ca.issue(DEVICE);
  await new DeviceCertificates(new RedisCertificateRegistry(redis, `${clusterName}:`)).recordIssued(issued);
  writeFileSync(path.join(dir, "device.crt"), issued.certPem);
  writeFileSync(path.join(dir, "device.key"), issued.keyPem, { mode: 0o600 });
  const extraArgs = [
    "--cluster-heartbeat-ms", "200",
    "--gateway-cert-file", pki.certFile, "--gateway-key-file", pki.keyFile, "--gateway-device-ca-file", path.join(dir, "ca.crt"), "--gateway-cert-port", "0",
  ];
  nodes = await Promise.all([
    startNode({ regionId: "jp-tokyo", nodeId: "tokyo-a", redisUrl, clusterName, extraArgs }),
    startNode({ regionId: "jp-tokyo", nodeId: "tokyo-b", redisUrl, clusterName, extraArgs }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(sessions.map((session) => session.leave(false)));
  await adapter?.stop();
  await Promise.allSettled(nodes.map((node) => node.stop()));
  const keys = await redis?.keys(`${clusterName}:*`).catch(() => []);
  if (keys?.length) await redis.del(...keys);
  redis?.disconnect();
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function certUrlOf(node: NodeProcess): Promise<string> {
  return JSON.parse((await httpRequest(`${node.httpUrl}/gateway`)).text).certUrl;
}

describe("device certificates across the nodes of a region", () => {
  it("a certificate adapter at the other node is sent to its room's node's certificate listener and driven there", { timeout: 90_000 }, async () => {
    sessions.push(await joinTeleop(nodes[0]!, SITE, "supervisor", { devices: [DEVICE], sub: "site-supervisor" }));
    const claim = await waitFor(async () => {
      const value = await redis.get(`${clusterName}:device-owner:${DEVICE}`);
      return value ? (JSON.parse(value) as DeviceOwner) : undefined;
    }, 5000, "the device's claim in the directory");
    const host = nodes.find((node) => node.nodeId === claim.nodeId)!;
    const other = nodes.find((node) => node.nodeId !== claim.nodeId)!;
    const hostCertUrl = await certUrlOf(host);
    expect(claim.certGatewayUrl).toBe(hostCertUrl);

    adapter = await startAdapter({
      deviceId: DEVICE, driver: "sim-excavator", nodes: [other.httpUrl], caFile: pki.caFile,
      extraArgs: ["--cert", path.join(dir, "device.crt"), "--key", path.join(dir, "device.key")],
    });
    const online = await adapter.waitForStatus((s) => s.state === "online" && s.connection?.nodeId === host.nodeId, 20_000, "the adapter online at the room's node");
    expect(online.connection?.url).toBe(hostCertUrl);
    expect(online.counters.redirects).toBe(1);
    expect(online.counters.errors.CERTIFICATE_MISSING ?? 0).toBe(0);

    const session = await joinTeleop(other, SITE, "operator", { sub: "far-operator" });
    sessions.push(session);
    await driveOnce(session, adapter, DEVICE, "swing", 0.5);
  });
});
