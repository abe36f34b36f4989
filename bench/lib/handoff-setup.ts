/**
 * The handoff bench's set-up and its calls to the cluster: the two regions (test
 * fixtures' startRegions: each region its node(s) and its redis-server, the delay proxies
 * with the reference RTTs), the hall, the admin's handoff and the hall's handoff history,
 * and CPU times (the nodes' input counters are the test fixtures', test/fixtures/handoffs.ts).
 */
import { startRegions, type RegionsHarness } from "../../test/fixtures/regions.ts";
import { openHall } from "../../test/fixtures/expo.ts";
import { handoffHistory as roomHandoffs } from "../../test/fixtures/handoffs.ts";
import { testToken } from "../../test/fixtures/tokens.ts";
import type { NodeProcess } from "../../test/fixtures/processes.ts";
import type { HandoffRecord } from "../../server/handoff/types.ts";
import { benchHallLayout, hallSideFor } from "./expo-protocol.ts";
import { log, machineBusyMs, procCpuMs } from "./measure.ts";

/** The nodes' default interest radius, m: the hall is sized for about 30 neighbours at it. */
export const interestRadiusM = 20;

export interface HarnessOptions {
  source: string;
  target: string;
  tickMs: number;
  moveHz: number;
  delayScale: number;
  clients: number;
  seatSeconds: number;
  /** 2 for the kill phase: a node of the hall's region is left to restore it. */
  nodesPerRegion: number;
  /** The nodes' failover.snapshotMs. */
  snapshotMs: number;
}

export async function startHarness(options: HarnessOptions): Promise<RegionsHarness> {
  const nodes = options.nodesPerRegion === 1 ? "a node" : `${options.nodesPerRegion} nodes`;
  log(`starting regions ${options.source} and ${options.target} (${nodes} and a redis-server each, the cluster store in ${options.source}; delays ×${options.delayScale})`);
  const startedAt = performance.now();
  const harness = await startRegions({
    regions: [options.source, options.target], nodesPerRegion: options.nodesPerRegion,
    delays: options.delayScale > 0,
    delayScale: options.delayScale > 0 ? options.delayScale : undefined,
    // Quiet nodes: their output is kept in memory for failure messages.
    env: { TSUNAGI_LOG_LEVEL: "warn" },
    nodeArgs: [
      "--limits-max-matchmake-per-second", String(Math.max(1000, options.clients * 2)),
      "--limits-max-ccu", String(Math.max(10_000, options.clients * 4)),
      "--limits-max-messages-per-second", String(Math.max(120, Math.ceil(options.moveHz * 4))),
      "--expo-tick-ms", String(options.tickMs),
      "--failover-snapshot-ms", String(options.snapshotMs),
      "--handoff-seat-seconds", String(options.seatSeconds),
      "--expo-max-move-hz", String(Math.min(100, Math.max(20, Math.ceil(options.moveHz * 1.5)))),
    ],
  });
  log(`regions up in ${((performance.now() - startedAt) / 1000).toFixed(1)} s: ${harness.nodes.map((node) => `${node.nodeId} (${node.regionId}) ${node.httpUrl}`).join(", ")}`);
  return harness;
}

/** Opens a hall of no zones (one room) on the source's node; its room id and side, m. */
export async function openBenchHall(node: NodeProcess, hallId: string, clients: number): Promise<{ roomId: string; side: number }> {
  const side = hallSideFor(clients, interestRadiusM);
  const opened = await openHall(node, benchHallLayout(hallId, side, false));
  if (opened.status !== 201) throw new Error(`POST /expo/halls on ${node.nodeId}: HTTP ${opened.status} ${JSON.stringify(opened.body).slice(0, 500)}`);
  const zone = (opened.body.zones as Array<{ roomId: string; nodeId: string }> | undefined)?.[0];
  if (zone && zone.nodeId !== node.nodeId) throw new Error(`the hall opened on ${zone.nodeId}, not on ${node.nodeId}`);
  log(`opened hall ${hallId} (${side} × ${side} m, 20 booths, no zones) on ${node.nodeId}`);
  return { roomId: zone?.roomId ?? hallId, side };
}

/** Expo rooms open on `node` (tsunagi_rooms{type="expo"}): the bench's hall is the only one. */
async function expoRooms(node: NodeProcess): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const match = text.match(/^tsunagi_rooms\{type="expo"\} ([0-9.e+-]+)$/m);
  return match ? Number(match[1]) : 0;
}

/**
 * Waits until `node` hosts no copy of the hall any more, up to `timeoutMs`; how long
 * that took, ms. A hall's old home closes its moved copy once the last of its clients
 * has left (at the latest after handoff.seatSeconds), so each handoff starts from one
 * copy of the hall in the cluster.
 */
export async function waitUntilNoHall(node: NodeProcess, timeoutMs: number): Promise<number> {
  if (await expoRooms(node) === 0) return 0;
  const startedAt = performance.now();
  do {
    if (performance.now() - startedAt > timeoutMs) throw new Error(`${node.nodeId} still hosts a copy of the hall after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  } while (await expoRooms(node) > 0);
  return Math.round(performance.now() - startedAt);
}

/**
 * POST /rooms/:roomId/handoff?to=REGION&node=NODE on `owner`, the node that hosts the
 * room, as an admin; resolves with the record of a Complete handoff, throws on anything else.
 */
export async function handOff(harness: RegionsHarness, owner: NodeProcess, roomId: string, to: string, toNodeId: string): Promise<HandoffRecord> {
  const response = await fetch(`${owner.httpUrl}/rooms/${encodeURIComponent(roomId)}/handoff?to=${encodeURIComponent(to)}&node=${encodeURIComponent(toNodeId)}`, {
    method: "POST", headers: { authorization: `Bearer ${await testToken(harness.clusterName, "admin", "bench-admin")}` },
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`handoff of ${roomId} from ${owner.nodeId} to ${to}: HTTP ${response.status} ${text.slice(0, 1000)}`);
  const record = JSON.parse(text) as HandoffRecord;
  if (record.outcome !== "complete") throw new Error(`handoff of ${roomId} from ${owner.nodeId} to ${to}: ${record.outcome} (${record.error})`);
  return record;
}

/** The hall's handoff history, as `node` (hosting it) answers GET /rooms/:roomId/handoffs to an admin. */
export async function handoffHistory(node: NodeProcess, roomId: string): Promise<HandoffRecord[]> {
  const { status, body } = await roomHandoffs(node, encodeURIComponent(roomId));
  if (status !== 200) throw new Error(`GET /rooms/${roomId}/handoffs on ${node.nodeId}: HTTP ${status} ${JSON.stringify(body).slice(0, 500)}`);
  return (body as { handoffs: HandoffRecord[] }).handoffs;
}

/** CPU times (ms) of the processes of a run, and the machine's, at `atMs`. */
export interface CpuSample { atMs: number; nodes: number[]; loads: number[]; self: number; machine: number }

export async function sampleCpu(nodes: readonly NodeProcess[], loadPids: number[]): Promise<CpuSample> {
  const [nodeMs, loads, self, machine] = await Promise.all([
    Promise.all(nodes.map((node) => procCpuMs(node.child.pid!))), Promise.all(loadPids.map((pid) => procCpuMs(pid))), procCpuMs(process.pid), machineBusyMs(),
  ]);
  return { atMs: performance.now(), nodes: nodeMs, loads, self, machine };
}

/**
 * CPU between two samples, % of one core: every node, each visitor load process, this
 * process (the delay proxies), the machine (100 × cores at most), and what of it was
 * none of these (other work on the machine; the regions' redis-servers are part of it).
 */
export function cpuPct(nodes: readonly NodeProcess[], start: CpuSample, end: CpuSample) {
  const wallMs = end.atMs - start.atMs;
  const pct = (a: number, b: number) => Math.round(((b - a) / wallMs) * 1000) / 10;
  const nodePct = nodes.map((_, i) => pct(start.nodes[i]!, end.nodes[i]!));
  const loads = end.loads.map((ms, i) => pct(start.loads[i]!, ms));
  const proxies = pct(start.self, end.self);
  const machine = pct(start.machine, end.machine);
  const ours = [...nodePct, ...loads, proxies].reduce((sum, value) => sum + value, 0);
  return {
    nodes: Object.fromEntries(nodes.map((node, i) => [node.nodeId, nodePct[i]!])),
    loads, proxies, machine, other: Math.round(Math.max(0, machine - ours) * 10) / 10,
  };
}
