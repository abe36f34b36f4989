/**
 * TLS on every hop, with a throwaway CA made at test time (test/fixtures/tls.ts): nodes
 * serving https and wss, matchmaking forwarded to another region over https and checked
 * against the configured CA, adapters connecting over wss with --ca, and a path that
 * alters the ciphertext moving nothing (the link fails, the machine stops).
 */
import "../../server/polyfills.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import { OperatorControls } from "../../client-sdk/OperatorControls.ts";
import type { RoomSession } from "../../client-sdk/RoomSession.ts";
import { httpRequest } from "../../common/httpRequest.ts";
import { freePort, onFreePorts, startNode, startRedis, waitFor, type NodeProcess, type RedisProcess } from "../fixtures/processes.ts";
import { enrollDevices, joinTeleop, joint, startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { TamperProxy } from "../fixtures/tamper-proxy.ts";
import { makeTestPki, type TestPki } from "../fixtures/tls.ts";
import { testToken } from "../fixtures/tokens.ts";

let pki: TestPki;
let stranger: TestPki;
beforeAll(() => {
  pki = makeTestPki();
  stranger = makeTestPki();
});
afterAll(() => {
  pki?.remove();
  stranger?.remove();
});

/** The node serves TLS with the test CA's certificate and trusts `ca` for its peers. */
const tlsArgs = (ca: TestPki) => ["--tls-cert-file", pki.certFile, "--tls-key-file", pki.keyFile, "--tls-ca-file", ca.caFile];

describe("nodes over https, matchmaking forwarded over https", () => {
  // A redis-server of this file's own: nothing another file runs beside it can flush its keys.
  let clusterRedis: RedisProcess | undefined;
  let clusterRedisUrl: string;
  const clusterName = `tls-${randomUUID().slice(0, 8)}`;
  let osakaRedis: RedisProcess;
  let tokyo: NodeProcess;
  let osaka: NodeProcess;
  /** A Tokyo node that trusts another CA: it cannot reach Osaka. */
  let misconfigured: NodeProcess;

  beforeAll(async () => {
    clusterRedis = await startRedis();
    clusterRedisUrl = clusterRedis.url;
    osakaRedis = await startRedis();
    [tokyo, osaka, misconfigured] = await Promise.all([
      startNode({ regionId: "jp-tokyo", nodeId: "tokyo-1", redisUrl: clusterRedisUrl, clusterRedisUrl, clusterName, extraArgs: ["--regions-file", "deploy/regions.json", ...tlsArgs(pki)] }),
      startNode({ regionId: "jp-osaka", nodeId: "osaka-1", redisUrl: osakaRedis.url, clusterRedisUrl, clusterName, extraArgs: ["--regions-file", "deploy/regions.json", ...tlsArgs(pki)] }),
      startNode({ regionId: "jp-nagoya", nodeId: "nagoya-1", redisUrl: clusterRedisUrl, clusterRedisUrl, clusterName, extraArgs: ["--regions-file", "deploy/regions.json", ...tlsArgs(stranger)] }),
    ]);
    await waitFor(async () => JSON.parse((await httpRequest(`${tokyo.httpUrl}/regions`, { ca: pki.ca })).text).regions.length === 3, 10_000, "three regions registered");
  }, 90_000);
  afterAll(async () => {
    await Promise.all([tokyo?.stop(), osaka?.stop(), misconfigured?.stop()]);
    await osakaRedis?.stop();
    await clusterRedis?.stop();
  });

  const matchmake = async (node: NodeProcess, roomId: string, rttHints: Record<string, number>) => {
    const answer = await httpRequest(`${node.httpUrl}/matchmake/create/session`, {
      method: "POST", ca: pki.ca, body: JSON.stringify({ roomId, rttHints }),
      headers: { "content-type": "application/json", authorization: `Bearer ${await testToken(clusterName, "host")}` },
    });
    return { status: answer.status, body: JSON.parse(answer.text) };
  };

  it("serves https only, and names https:// peers and a wss:// gateway", { timeout: 30_000 }, async () => {
    expect(tokyo.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const gateway = JSON.parse((await httpRequest(`${tokyo.httpUrl}/gateway`, { ca: pki.ca })).text);
    expect(gateway.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/device$/);
    const { regions } = JSON.parse((await httpRequest(`${tokyo.httpUrl}/regions`, { ca: pki.ca })).text);
    const urls = regions.flatMap((region: { nodes: Array<{ url: string }> }) => region.nodes.map((n) => n.url));
    expect(urls).toHaveLength(3);
    for (const url of urls) expect(url).toMatch(/^https:\/\//);
    // Not trusted without the CA; no plaintext on the TLS port.
    await expect(httpRequest(`${tokyo.httpUrl}/ping`)).rejects.toThrow(/certificate/);
    await expect(httpRequest(`${tokyo.httpUrl}/ping`, { ca: stranger.ca })).rejects.toThrow(/certificate/);
    await expect(httpRequest(tokyo.httpUrl.replace("https:", "http:") + "/ping", { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
  });

  it("forwards a create to the region that hosts it over https, checked against the configured CA", { timeout: 30_000 }, async () => {
    const placed = await matchmake(tokyo, `near-osaka-${randomUUID().slice(0, 6)}`, { "jp-tokyo": 20, "jp-osaka": 4, "jp-nagoya": 30 });
    expect(placed.status).toBe(200);
    expect(placed.body.publicAddress).toBe(new URL(osaka.httpUrl).host);
  });

  it("refuses to forward to a peer whose certificate does not chain to its CA (REGION_UNAVAILABLE)", { timeout: 30_000 }, async () => {
    const refused = await matchmake(misconfigured, `near-osaka-${randomUUID().slice(0, 6)}`, { "jp-tokyo": 20, "jp-osaka": 4, "jp-nagoya": 30 });
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe(4505);
    expect(refused.body.error).toMatch(/certificate/);
  });
});

describe("adapters over wss", () => {
  // A redis-server of this file's own: nothing another file runs beside it can flush its keys.
  let ownRedis: RedisProcess | undefined;
  let redisUrl: string;
  const clusterName = `tls-site-${randomUUID().slice(0, 8)}`;
  const ROOM = "site-tls";
  const EXCAVATOR = "ex-tls";
  let node: NodeProcess;
  let proxy: TamperProxy;
  let secrets: Record<string, string>;
  let excavator: AdapterProcess;
  let supervisor: RoomSession;

  beforeAll(async () => {
    ownRedis = await startRedis();
    redisUrl = ownRedis.url;
    secrets = await enrollDevices(redisUrl, clusterName, [[EXCAVATOR, "excavator"]]);
    // The gateway alone serves TLS (the operators here speak plain http on loopback), behind a
    // proxy that can alter the ciphertext.
    // (Again on fresh ports if the one fixed beforehand was taken before the node bound it.)
    await onFreePorts(async () => {
      const gatewayPort = await freePort();
      proxy = await TamperProxy.start({ target: { host: "127.0.0.1", port: gatewayPort }, mode: "raw" });
      node = await startNode({
        regionId: "jp-tokyo", redisUrl, clusterName, gatewayPort,
        extraArgs: ["--gateway-cert-file", pki.certFile, "--gateway-key-file", pki.keyFile, "--gateway-public-address", `127.0.0.1:${proxy.port}`],
      }).catch(async (error) => { await proxy.close(); throw error; });
    });
    excavator = await startAdapter({ deviceId: EXCAVATOR, driver: "sim-excavator", nodes: [node.httpUrl], secret: secrets[EXCAVATOR], caFile: pki.caFile });
    await excavator.waitForStatus((s) => s.state === "online", 20_000, "the excavator online over wss");
    supervisor = await joinTeleop(node, ROOM, "supervisor", { devices: [EXCAVATOR], sub: "site-supervisor" });
    await waitFor(() => supervisor.deviceSnapshot(EXCAVATOR).lease?.online, 10_000, "the excavator online in the room");
  }, 60_000);
  afterAll(async () => {
    await supervisor?.leave().catch(() => {});
    await excavator?.stop();
    await node?.stop();
    await proxy?.close();
    await ownRedis?.stop();
  });

  it("connects over wss with --ca, and not to a gateway whose certificate it cannot check", { timeout: 30_000 }, async () => {
    const status = await excavator.status();
    expect(status.connection?.url).toMatch(/^wss:\/\//);
    const untrusting = await startAdapter({ deviceId: "ex-untrusting", driver: "sim-excavator", nodes: [node.httpUrl], secret: secrets[EXCAVATOR], caFile: stranger.caFile });
    try {
      const failed = await untrusting.waitForStatus((s) => /certificate/.test(s.lastError?.message ?? ""), 20_000, "a certificate error");
      expect(failed.lastError).toMatchObject({ phase: "connect" });
      expect(failed.state).not.toBe("online");
    } finally {
      await untrusting.stop();
    }
  });

  it("altered ciphertext on the path moves nothing: the link fails, the machine stops, the adapter reconnects", { timeout: 40_000 }, async () => {
    const session = await joinTeleop(node, ROOM, "operator", { sub: "driver-tls" });
    const controls = new OperatorControls(session, { deviceId: EXCAVATOR, rateHz: 50 });
    try {
      await waitFor(() => controls.profile, 5000, "the profile");
      await controls.acquire();
      controls.start();
      controls.setAxes({ boom: 0.2 });
      await excavator.waitForStatus((s) => Math.abs(joint(s, "boom").velocity - 0.2) < 1e-6, 10_000, "the boom moving over wss");
      const before = await excavator.status();
      let flipped = false;
      proxy.rewrite = (direction, chunk) => {
        if (direction !== "toClient" || flipped || chunk.length < 8) return undefined;
        flipped = true;
        const altered = Buffer.from(chunk);
        altered[altered.length - 1] ^= 0x01; // inside a TLS record: its authentication tag no longer holds
        return altered;
      };
      const after = await excavator.waitForStatus((s) => s.counters.connectAttempts > before.counters.connectAttempts && stopped(s), 20_000, "the link dropped and the machine stopped");
      expect(flipped).toBe(true);
      expect(after.counters.refusedFrames).toBe(before.counters.refusedFrames); // nothing reached the channel to be refused
      proxy.rewrite = undefined;
      await excavator.waitForStatus((s) => s.state === "online", 20_000, "the adapter back online over wss");
    } finally {
      controls.stop();
      controls.dispose();
      await session.leave().catch(() => {});
    }
  });
});
