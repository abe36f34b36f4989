/**
 * Device credentials: challenge-proof verifications per CPU-second (the registry lookup
 * included, in-memory so Redis round trips do not hide the CPU cost), against a baseline
 * of jose HS256 JWT verifications in the same run; and issuance (enrolment against the
 * real Redis on 127.0.0.1:6379) latency percentiles. Device certificates: full mTLS
 * handshakes per CPU-second (certHandshakesPerCoreS: client and server both in this
 * process on loopback, so the CPU is both sides' of each handshake; a fresh TLS session
 * each, no resumption; the server verifies the client certificate against the device CA,
 * the client does not verify the server), and the p99 of issuing one (certIssuanceP99Ms:
 * key generation, signing, and recording the serial in Redis).
 */
import { randomUUID } from "node:crypto";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { DeviceCa } from "../server/auth/DeviceCa.ts";
import { DeviceCertificates, RedisCertificateRegistry } from "../server/auth/DeviceCertificates.ts";
import { z } from "zod";
import { Redis } from "ioredis";
import { defineBench } from "./lib/bench.ts";
import { DeviceCredentials, InMemoryDeviceRegistry, RedisDeviceRegistry } from "../server/auth/DeviceCredentials.ts";
import { proveChallenge } from "../proto/deviceAuth.ts";
import { TokenService } from "../server/auth/tokens.ts";
import { clusterKeys } from "../server/auth/keys.ts";

const options = z.object({
  verifications: z.coerce.number().int().min(100).default(50_000),
  issuances: z.coerce.number().int().min(10).default(1_000),
  redisUrl: z.string().default("redis://127.0.0.1:6379"),
  handshakes: z.coerce.number().int().min(10).default(2_000),
  certIssuances: z.coerce.number().int().min(10).default(500),
});

const keys = clusterKeys("bench-cluster-secret-0123456789abcdef01234");

/** Runs `work` `count` times (awaiting each) and returns operations per CPU-second of this process. */
async function perCpuSecond(count: number, work: (i: number) => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await work(i);
  const used = process.cpuUsage(before);
  return count / ((used.user + used.system) / 1e6);
}

/** Full mTLS handshakes per CPU-second of this process (both ends here). */
async function mtlsHandshakesPerCpuSecond(count: number): Promise<number> {
  const made = DeviceCa.create();
  const ca = DeviceCa.load(made.certPem, made.keyPem);
  const server = ca.issue("bench-server");
  const client = ca.issue("bench-device");
  const listener = tls.createServer({ cert: server.certPem, key: server.keyPem, ca: made.certPem, requestCert: true, rejectUnauthorized: false });
  let unauthorized = 0;
  listener.on("secureConnection", (socket) => { if (!socket.authorized) unauthorized++; socket.on("error", () => {}); socket.end(); });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = (listener.address() as AddressInfo).port;
  const handshake = () => new Promise<void>((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, cert: client.certPem, key: client.keyPem, rejectUnauthorized: false });
    socket.once("secureConnect", () => { socket.destroy(); resolve(); });
    socket.once("error", reject);
  });
  try {
    for (let i = 0; i < Math.min(50, count); i++) await handshake(); // warm up
    const rate = await perCpuSecond(count, handshake);
    if (unauthorized > 0) throw new Error(`${unauthorized} handshakes did not verify the client certificate`);
    return rate;
  } finally {
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const credentialsBench = defineBench({
  description: "device credential verifications per CPU-second (vs JWT baseline) and issuance latency; device certificates: mTLS handshakes per CPU-second (client and server in one process) and issuance latency (keygen + signing + Redis write)",
  options,
  timeoutSeconds: () => 120,
  async run(opts) {
    const credentials = new DeviceCredentials(keys.device, new InMemoryDeviceRegistry());
    const devices = await Promise.all(Array.from({ length: 100 }, (_, i) => credentials.enroll(`dev-${i}`, "excavator")));
    const challenges = devices.map(() => credentials.challenge());
    const proofs = devices.map((d, i) => proveChallenge(d.deviceSecret, d.record.deviceId, challenges[i]));

    const tokens = new TokenService({ key: keys.token, audience: "bench" });
    const jwts = await Promise.all(devices.map((d) => tokens.issue(DeviceCredentials.tokenClaims(d.record))));

    // Warm both paths before measuring.
    for (let i = 0; i < 2000; i++) { await credentials.verify(`dev-${i % 100}`, challenges[i % 100], proofs[i % 100]); await tokens.verify(jwts[i % 100]); }
    process.stderr.write(`credentials: ${opts.verifications} verifications each way\n`);
    const verificationsPerCpuS = await perCpuSecond(opts.verifications, (i) => credentials.verify(`dev-${i % 100}`, challenges[i % 100], proofs[i % 100]));
    const jwtPerCpuS = await perCpuSecond(opts.verifications, (i) => tokens.verify(jwts[i % 100]));

    const redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1 });
    const prefix = `bench-${randomUUID().slice(0, 8)}:`;
    try {
      const issuer = new DeviceCredentials(keys.device, new RedisDeviceRegistry(redis, prefix));
      process.stderr.write(`credentials: ${opts.issuances} enrolments against ${opts.redisUrl}\n`);
      const latencies: number[] = [];
      for (let i = 0; i < opts.issuances; i++) {
        const started = performance.now();
        await issuer.enroll(`issue-${i}`, "drone");
        latencies.push(performance.now() - started);
      }
      latencies.sort((a, b) => a - b);

      process.stderr.write(`credentials: ${opts.handshakes} mTLS handshakes, ${opts.certIssuances} certificate issuances\n`);
      const certHandshakesPerCoreS = await mtlsHandshakesPerCpuSecond(opts.handshakes);
      const made = DeviceCa.create();
      const ca = DeviceCa.load(made.certPem, made.keyPem);
      const certificates = new DeviceCertificates(new RedisCertificateRegistry(redis, prefix));
      const certLatencies: number[] = [];
      for (let i = 0; i < opts.certIssuances; i++) {
        const started = performance.now();
        await certificates.recordIssued(ca.issue(`cert-${i}`));
        certLatencies.push(performance.now() - started);
      }
      certLatencies.sort((a, b) => a - b);
      const round = (n: number) => Math.round(n * 100) / 100;
      return {
        bench: "credentials",
        verificationsPerCpuS: Math.round(verificationsPerCpuS),
        baselineJwtPerCpuS: Math.round(jwtPerCpuS),
        ratioVsJwt: round(verificationsPerCpuS / jwtPerCpuS),
        issuanceP50Ms: round(percentile(latencies, 50)),
        issuanceP99Ms: round(percentile(latencies, 99)),
        certHandshakesPerCoreS: Math.round(certHandshakesPerCoreS),
        certIssuanceP50Ms: round(percentile(certLatencies, 50)),
        certIssuanceP99Ms: round(percentile(certLatencies, 99)),
      };
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  },
});
