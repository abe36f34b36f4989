/**
 * Who may attach a machine: real adapter processes against a real node and Redis, with
 * provisioning through `npm run devices`. A forged, unknown, revoked or rotated-out
 * credential never attaches; each refusal reaches the adapter as a coded error, the
 * node's log and its metrics; a device revoked while connected is cut off and stops.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes, randomUUID } from "node:crypto";
import { ErrorCode } from "../../proto/index.ts";
import { TokenService } from "../../server/auth/tokens.ts";
import { clusterKeys } from "../../server/auth/keys.ts";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { flushRedisDb, runScript, startNode, testSecret, type NodeProcess } from "../fixtures/processes.ts";
import { testIssuer, testKeys } from "../fixtures/tokens.ts";
import { startAdapter, stopped, type AdapterProcess } from "../fixtures/teleop.ts";
import { testRedisUrl } from "../fixtures/redis.ts";

const redisUrl = testRedisUrl(8);
const clusterName = `creds-${randomUUID().slice(0, 8)}`;
let node: NodeProcess;
const adapters: AdapterProcess[] = [];

/** `npm run devices -- …` against this test's cluster. */
function devicesCli(args: string[]) {
  return runScript("cli/devices.ts", [...args, "--redis-url", redisUrl, "--cluster-name", clusterName], { env: { TSUNAGI_DEVICE_KEY: testKeys.device.toString("hex") } });
}

/** `devices enroll` as an operator runs it; its output: the enrolment and the secret. */
async function enrollment(deviceId: string): Promise<{ version: number; enrolment: string; deviceSecret: string }> {
  const { code, stdout, stderr } = await devicesCli(["enroll", deviceId, "--class", "excavator"]);
  if (code !== 0) throw new Error(`devices enroll exited ${code}: ${stderr}`);
  return JSON.parse(stdout);
}

async function enroll(deviceId: string): Promise<string> {
  return (await enrollment(deviceId)).deviceSecret;
}

async function adapter(deviceId: string, credential: { secret?: string; token?: string }) {
  const started = await startAdapter({ deviceId, driver: "sim-excavator", nodes: [node.httpUrl], ...credential });
  adapters.push(started);
  return started;
}

/** Waits for the adapter's last error to carry `code`, and checks it never came online. */
async function refused(process: AdapterProcess, code: number) {
  const status = await process.waitForStatus((s) => s.lastError?.code === code, 15_000, `refusal ${code}`);
  expect(status.state).not.toBe("online");
  expect(status.counters.reconnects).toBe(0);
  expect(status.connection).toBeUndefined();
  expect(stopped(status)).toBe(true);
  return status;
}

async function refusals(code: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("tsunagi_errors_total{") && l.includes(`code="${code}"`) && l.includes('source="gateway"'));
  return line ? Number(line.split(" ").pop()) : 0;
}

beforeAll(async () => {
  await flushRedisDb(redisUrl);
  node = await startNode({ regionId: "jp-sendai", redisUrl, clusterName, extraArgs: ["--gateway-revalidate-ms", "200"] });
});

afterAll(async () => {
  await Promise.all(adapters.map((a) => a.stop()));
  await node?.stop();
  await flushRedisDb(redisUrl).catch(() => {});
});

describe("device credentials at the gateway", () => {
  it("refuses a forged secret (AUTH_FAILED), an unknown device (DEVICE_UNKNOWN) and a forged token (TOKEN_INVALID)", { timeout: 60_000 }, async () => {
    await enroll("ex-forged");
    const authFailedBefore = await refusals("AUTH_FAILED");
    const forged = await adapter("ex-forged", { secret: randomBytes(32).toString("hex") });
    const unknown = await adapter("ex-nobody", { secret: randomBytes(32).toString("hex") });
    const otherKey = new TokenService({ key: clusterKeys("some-other-cluster-secret-0123456789abcdef").token, audience: clusterName });
    const forgedToken = await adapter("ex-forged", { token: await otherKey.issue({ sub: "ex-forged", role: "device" }) });

    const [forgedStatus] = await Promise.all([refused(forged, ErrorCode.AUTH_FAILED), refused(unknown, ErrorCode.DEVICE_UNKNOWN), refused(forgedToken, ErrorCode.TOKEN_INVALID)]);
    expect(forgedStatus.lastError!.message).toMatch(/ex-forged/);
    expect(await refusals("AUTH_FAILED")).toBeGreaterThan(authFailedBefore);
    expect(await refusals("DEVICE_UNKNOWN")).toBeGreaterThan(0);
    const logLines = node.output().split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as { code?: string; msg: string });
    expect(logLines.some((line) => line.code === "AUTH_FAILED" && line.msg.startsWith('device channel: device "ex-forged" refused'))).toBe(true);
    // The node is unharmed.
    expect((await fetch(`${node.httpUrl}/healthz`)).status).toBe(200);
  });

  it("a token for another device or role is FORBIDDEN", { timeout: 60_000 }, async () => {
    await enroll("ex-token");
    const issuer = testIssuer(clusterName);
    const other = await adapter("ex-token", { token: await issuer.issue({ sub: "ex-someone-else", role: "device" }) });
    const operatorToken = await adapter("ex-token", { token: await issuer.issue({ sub: "ex-token", role: "operator" }) });
    await Promise.all([refused(other, ErrorCode.FORBIDDEN), refused(operatorToken, ErrorCode.FORBIDDEN)]);
  });

  it("revoking a device cuts off its connected adapter, which stays stopped; neither the old secret nor a rotated-out one attaches again", { timeout: 60_000 }, async () => {
    const secret = await enroll("ex-revoked");
    const device = await adapter("ex-revoked", { secret });
    await device.waitForStatus((s) => s.state === "online", 20_000, "online with the enrolled secret");

    const revoked = await devicesCli(["revoke", "ex-revoked"]);
    expect(revoked.code).toBe(0);
    const cut = await device.waitForStatus((s) => s.lastError?.code === ErrorCode.FORBIDDEN, 10_000, "cut off after revocation");
    expect(stopped(cut)).toBe(true);
    // It keeps trying and keeps being refused.
    await device.waitForStatus((s) => s.counters.connectAttempts >= 3 && s.state !== "online", 15_000, "refused again");
    expect((await device.status()).lastError!.code).toBe(ErrorCode.FORBIDDEN);
    const shown = await devicesCli(["show", "ex-revoked"]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ deviceId: "ex-revoked", revoked: true });
    expect(shown.stdout).not.toContain(secret);

    // Re-enrolment issues a new secret; the old one stays dead.
    const renewed = await enroll("ex-revoked");
    expect(renewed).not.toBe(secret);
    await device.waitForStatus((s) => s.lastError?.code === ErrorCode.AUTH_FAILED, 15_000, "the old secret refused as a bad proof");
    const replacement = await adapter("ex-revoked", { secret: renewed });
    await replacement.waitForStatus((s) => s.state === "online", 20_000, "online with the new secret");
    expect((await device.status()).state).not.toBe("online");
  });

  it("re-enrolling a connected device rotates its secret and cuts off the connection made with the old one", { timeout: 60_000 }, async () => {
    const secret = await enroll("ex-rotated");
    const device = await adapter("ex-rotated", { secret });
    await device.waitForStatus((s) => s.state === "online", 20_000, "online");
    await enroll("ex-rotated");
    // The cut-off is a FORBIDDEN on the live connection; the reconnect that follows is refused AUTH_FAILED
    // (old secret) and may replace lastError before a status poll sees it, so read the per-code counter.
    const cut = await device.waitForStatus((s) => s.state !== "online" && (s.counters.errors.FORBIDDEN ?? 0) >= 1, 10_000, "cut off after rotation");
    expect(stopped(cut)).toBe(true);
    await device.waitForStatus((s) => (s.counters.errors.AUTH_FAILED ?? 0) >= 1 && s.state !== "online", 15_000, "the old secret refused as a bad proof");
  });

  it("a device token names its enrolment: re-enrolling the device cuts off a connected token-mode adapter and refuses its token at the hello", { timeout: 60_000 }, async () => {
    const first = await enrollment("ex-token-mode");
    const token = await testIssuer(clusterName).issue({ sub: "ex-token-mode", role: "device", ver: first.version, enr: first.enrolment });
    const device = await adapter("ex-token-mode", { token });
    await device.waitForStatus((s) => s.state === "online", 20_000, "online with the device token");

    await enrollment("ex-token-mode");
    const cut = await device.waitForStatus((s) => s.state !== "online" && (s.counters.errors.FORBIDDEN ?? 0) >= 1, 10_000, "cut off after re-enrolment");
    expect(stopped(cut)).toBe(true);
    // Its reconnects present the same (still unexpired) token, and the hello refuses it.
    const attempts = cut.counters.connectAttempts;
    const refusedAgain = await device.waitForStatus((s) => s.counters.connectAttempts > attempts + 1 && s.state !== "online", 15_000, "the old enrolment's token refused at the hello");
    expect(refusedAgain.lastError!.code).toBe(ErrorCode.FORBIDDEN);
    expect(refusedAgain.lastError!.message).toMatch(/earlier enrolment/);
    expect(node.output()).toMatch(/ex-token-mode's credential was re-enrolled \(the token names the earlier enrolment\)/);
  });

  it("npm run keys derives the nodes' device key from the cluster secret; provisioning with it from a file attaches the adapter", { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tsunagi-keys-"));
    try {
      writeFileSync(path.join(dir, "cluster.secret"), `${testSecret}\n`, { mode: 0o600 });
      const keyFile = path.join(dir, "device.key");
      const derived = await runScript("cli/keys.ts", ["device-key", "--out", keyFile], { env: { TSUNAGI_AUTH_SECRET: "", TSUNAGI_AUTH_SECRET_FILE: path.join(dir, "cluster.secret") } });
      expect(derived.code).toBe(0);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      expect(readFileSync(keyFile, "utf8").trim()).toBe(testKeys.device.toString("hex"));
      expect((await runScript("cli/keys.ts", ["device-key", "--out", keyFile], { env: { TSUNAGI_AUTH_SECRET: testSecret } })).code).toBe(2); // never overwrites
      expect((await runScript("cli/keys.ts", ["device-key"], { env: { TSUNAGI_AUTH_SECRET: "", TSUNAGI_AUTH_SECRET_FILE: "" } })).stderr).toMatch(/the cluster secret is required/);

      const enrolled = await runScript("cli/devices.ts", ["enroll", "ex-keyfile", "--class", "excavator", "--redis-url", redisUrl, "--cluster-name", clusterName, "--device-key-file", keyFile], { env: { TSUNAGI_DEVICE_KEY: "" } });
      expect(enrolled.code).toBe(0);
      const device = await adapter("ex-keyfile", { secret: JSON.parse(enrolled.stdout).deviceSecret });
      await device.waitForStatus((s) => s.state === "online", 20_000, "online with the secret from a key-file enrolment");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const withoutKey = await runScript("cli/devices.ts", ["enroll", "ex-nokey", "--redis-url", redisUrl, "--cluster-name", clusterName], { env: { TSUNAGI_DEVICE_KEY: "", TSUNAGI_AUTH_SECRET: testSecret } });
    expect(withoutKey.code).toBe(2);
    expect(withoutKey.stderr).toMatch(/enroll needs the cluster's device key/);
  });

  it("the devices CLI explains bad usage and unknown devices", async () => {
    const unknown = await devicesCli(["revoke", "ex-never-enrolled"]);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/no device "ex-never-enrolled" is enrolled/);
    const bad = await devicesCli(["enroll", "bad id!"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/DEVICE_ID "bad id!" must match/);
    const verb = await devicesCli(["destroy", "ex-1"]);
    expect(verb.code).toBe(2);
    expect(verb.stderr).toMatch(/usage: npm run devices/);
  });
});
