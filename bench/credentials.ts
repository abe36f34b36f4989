/**
 * Device credentials: challenge-proof verifications per CPU-second (the registry lookup
 * included, in-memory so Redis round trips do not hide the CPU cost), against a baseline
 * of jose HS256 JWT verifications in the same run; and issuance (enrolment against the
 * real Redis on 127.0.0.1:6379) latency percentiles. Device certificates: full mTLS
 * handshakes per CPU-second of the server (certHandshakesPerCoreS: the server in a child
 * process on its own core, its CPU read from /proc; the clients here, on loopback; a fresh
 * TLS session each, no resumption; the server verifies the client certificate against
 * the device CA, the client does not verify the server), and the p99 of issuing one (certIssuanceP99Ms:
 * key generation, signing, and recording the serial in Redis).
 */
import { randomUUID } from "node:crypto";
import tls from "node:tls";
import { BenchChild, serverAndLoadCpus } from "./lib/child-process.ts";
import { procCpuMs } from "./lib/measure.ts";
import type { MtlsServerConfig } from "./lib/mtls-server.ts";
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

/** Handshakes in flight at once, so the server is never waiting on the client. */
const handshakeConcurrency = 16;

/**
 * Full mTLS handshakes per CPU-second of the server: a child process (mtls-server.ts, on
 * its own core where it can have one) verifies each client certificate against the
 * device CA; this process is the clients, with one secure context as an adapter holds.
 */
async function mtlsHandshakesPerServerCpuSecond(count: number): Promise<number> {
  const made = DeviceCa.create();
  const ca = DeviceCa.load(made.certPem, made.keyPem);
  const server = ca.issue("bench-server");
  const client = ca.issue("bench-device");
  const config: MtlsServerConfig = { certPem: server.certPem, keyPem: server.keyPem, caPem: made.certPem };
  const cpus = serverAndLoadCpus();
  const { child, ready } = await BenchChild.start<{ port: number }>("mTLS server", "bench/lib/mtls-server.ts", config, undefined, cpus?.server);
  const secureContext = tls.createSecureContext({ cert: client.certPem, key: client.keyPem });
  const handshake = () => new Promise<void>((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port: ready.port, secureContext, rejectUnauthorized: false });
    // Under TLS 1.3 the client is through before the server has read its certificate:
    // wait for the server to close the connection, which it does once it verified it.
    socket.once("end", () => socket.end());
    socket.once("close", () => resolve());
    socket.once("error", reject);
  });
  const handshakes = async (total: number) => {
    let next = 0;
    await Promise.all(Array.from({ length: handshakeConcurrency }, async () => { while (next++ < total) await handshake(); }));
  };
  try {
    await handshakes(Math.min(200, count)); // warm up
    const before = await procCpuMs(child.pid);
    await handshakes(count);
    const serverCpuMs = await procCpuMs(child.pid) - before;
    const counts = await child.call<{ authorized: number; refused: number }>("counts");
    if (counts.refused > 0) throw new Error(`${counts.refused} handshakes did not verify the client certificate`);
    return count / (serverCpuMs / 1000);
  } finally {
    child.kill();
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export const credentialsBench = defineBench({
  description: "device credential verifications per CPU-second (vs JWT baseline) and issuance latency; device certificates: mTLS handshakes per CPU-second of the server and issuance latency (keygen + signing + Redis write)",
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
      const certHandshakesPerCoreS = await mtlsHandshakesPerServerCpuSecond(opts.handshakes);
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
