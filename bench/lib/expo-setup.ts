/**
 * Setting up and clearing away the expo bench's phases: the region nodes' flags, the
 * visitor load processes, opening a hall as its host, waiting for a region's nodes to
 * register, and removing a zoned run's Redis keys.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { TokenService } from "../../server/auth/tokens.ts";
import type { ExpoBenchOptions } from "../expo.ts";
import { BenchChild } from "./child-process.ts";
import type { BenchTokenIssuer, LoadReady, VisitorLoadConfig } from "./expo-protocol.ts";
import { log } from "./measure.ts";
import { httpText } from "./tasks.ts";

/** Load processes per phase. */
const loadProcesses = 3;
/** The nodes' handoff hysteresis, m (set explicitly so the load knows it). */
export const handoffMarginM = 1;

/** Region node flags shared by every phase: quiet, ephemeral ports, limits above the load. */
export function nodeFlags(options: ExpoBenchOptions, visitors: number): string[] {
  return [
    "--port", "0", "--gateway-port", "0", "--host", "127.0.0.1", "--transport", "uws", "--demo", "false", "--log-level", "warn",
    "--limits-max-ccu", String(Math.max(10_000, visitors * 2)),
    "--limits-max-matchmake-per-second", String(Math.max(100, visitors * 2)),
    "--limits-max-messages-per-second", String(Math.max(120, Math.ceil(options.hz * 4))),
    "--expo-tick-ms", String(options["tick-ms"]),
    "--expo-tick-slices", String(options["tick-slices"]),
    "--expo-interest-radius", String(options.radius),
    "--expo-max-move-hz", String(Math.min(100, Math.max(20, Math.ceil(options.hz * 1.5)))),
    "--expo-handoff-margin", String(handoffMarginM),
  ];
}

/** Splits `total` clients over the load processes: [firstIndex, count] each. */
export function split(total: number): Array<[number, number]> {
  const parts: Array<[number, number]> = [];
  let first = 0;
  for (let i = 0; i < loadProcesses; i++) {
    const count = Math.floor(total / loadProcesses) + (i < total % loadProcesses ? 1 : 0);
    parts.push([first, count]);
    first += count;
  }
  return parts.filter(([, count]) => count > 0);
}

export function expectedNeighbours(visitors: number, side: number, radius: number): number {
  return ((visitors - 1) * Math.PI * radius * radius) / (side * side);
}

export async function startVisitorLoads(phase: string, base: Omit<VisitorLoadConfig, "firstIndex" | "count">, signal?: AbortSignal): Promise<BenchChild[]> {
  log(`${phase}: joining ${base.total} visitors (ExpoSession) over ${loadProcesses} load processes, ${base.joinConcurrency} at a time each`);
  const startedAt = performance.now();
  const loads = await Promise.all(split(base.total).map(([firstIndex, count], i) =>
    BenchChild.start<LoadReady>(`${phase} visitors ${i + 1}`, "bench/lib/expo-visitors.ts", { ...base, firstIndex, count } satisfies VisitorLoadConfig, signal)));
  const handoffs = loads.reduce((sum, load) => sum + (load.ready.handoffs ?? 0), 0);
  log(`${phase}: all ${base.total} visitors joined and placed in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`
    + (base.zones.length ? ` (${handoffs} handed off into their starting zone)` : ""));
  return loads.map((load) => load.child);
}

/** Opens the hall as a host: a token from `issuer`, or from the node's /dev/token without one. */
export async function openHall(httpUrl: string, layout: Record<string, unknown>, issuer?: BenchTokenIssuer): Promise<{ hallId: string; zones: Array<{ zoneId: string; roomId: string; nodeId: string }> }> {
  const token = issuer
    ? await new TokenService({ key: Buffer.from(issuer.tokenKeyHex, "hex"), audience: issuer.audience }).issue({ sub: "bench-host", role: "host" })
    : await httpText(`${httpUrl}/dev/token?role=host&sub=bench-host`);
  const response = await fetch(`${httpUrl}/expo/halls`, {
    method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(layout),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`POST ${httpUrl}/expo/halls: HTTP ${response.status} ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

/** Waits until every node is in the region's registry, so the hall's zones spread over all of them. */
export async function waitForRegistry(httpUrl: string, nodeIds: string[], signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + 10_000;
  let seen: string[] = [];
  while (performance.now() < deadline) {
    const body = JSON.parse(await httpText(`${httpUrl}/regions`)) as { regions: Array<{ id: string; nodes: Array<{ nodeId: string }> }> };
    seen = body.regions.find((region) => region.id === "bench")?.nodes.map((node) => node.nodeId) ?? [];
    if (nodeIds.every((id) => seen.includes(id))) return;
    await sleep(100, undefined, { signal });
  }
  throw new Error(`zones: the 4 nodes did not all register within 10 s (registered: ${seen.join(", ") || "none"})`);
}

/** Resolves once process `pid` is gone (at most 5 s), so nothing of it writes to Redis after the clean-up. */
export async function exited(pid: number): Promise<void> {
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    try { process.kill(pid, 0); } catch { return; }
    await sleep(20);
  }
}

/**
 * Deletes the run's keys: those matching `patterns` (SCAN + DEL: never FLUSHDB, other
 * DBs and keys are someone else's), and the Colyseus driver's entries of the hall's
 * rooms and of the processes that hosted them (`roomcaches`, `roomcount` hashes, which
 * nodes killed outright leave behind).
 */
export async function removeRedisKeys(url: string, patterns: string[], roomIds: string[]): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let removed = 0;
    if (roomIds.length) {
      const caches = await redis.hmget("roomcaches", ...roomIds);
      const processIds = caches.flatMap((raw) => {
        try { return raw ? [String((JSON.parse(raw) as { processId?: unknown }).processId)] : []; } catch { return []; }
      });
      if (processIds.length) removed += await redis.hdel("roomcount", ...processIds);
      removed += await redis.hdel("roomcaches", ...roomIds);
    }
    for (const pattern of patterns) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        if (keys.length) removed += await redis.del(...keys);
      } while (cursor !== "0");
    }
    log(`zones: removed ${removed} Redis keys and entries (${patterns.join(", ")}; the hall's rooms in roomcaches and roomcount)`);
  } catch (error) {
    log(`zones: WARNING could not remove the run's Redis keys (${patterns.join(", ")}): ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
}
