/**
 * Bench child: the connections bench's load. Fetches one token per client first (when
 * the server wants them), then joins `connections` stock-SDK clients through matchmaking,
 * `concurrency` at a time, and holds them open. Argument: ConnectionsLoadConfig. Ready
 * once the tokens are in hand. Calls: joinAll → JoinFigures; open → how many are still
 * connected; leaveAll.
 */
import "../../server/polyfills.ts";
import { Client, type Room } from "@colyseus/sdk";
import type { ConnectionsLoadConfig, JoinFigures } from "./connections-protocol.ts";
import { log } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as ConnectionsLoadConfig;
const rooms: Room[] = [];
let open = 0;

async function inParallel(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) await task(next++);
  }));
}

async function fetchTokens(): Promise<string[]> {
  if (!config.tokenUrl) return [];
  const tokens = new Array<string>(config.connections);
  await inParallel(config.connections, 32, async (i) => {
    const response = await fetch(`${config.tokenUrl}?role=visitor&sub=conn-${i}`);
    if (!response.ok) throw new Error(`token ${i}: ${response.status} ${await response.text()}`);
    tokens[i] = await response.text();
  });
  return tokens;
}

const tokens = await fetchTokens();
log(`load: ${tokens.length} tokens ready`);

async function joinAll(): Promise<JoinFigures> {
  const errors: Record<string, number> = {};
  let failed = 0;
  let reported = Date.now();
  const started = performance.now();
  await inParallel(config.connections, config.concurrency, async (i) => {
    const client = new Client(config.url);
    if (tokens[i]) client.auth.token = tokens[i];
    try {
      const room = await client.joinOrCreate(config.roomName);
      room.onLeave(() => { open--; });
      rooms.push(room);
      open++;
    } catch (error) {
      failed++;
      const message = String((error as Error).message ?? error).slice(0, 120);
      if (Object.keys(errors).length < 10 || message in errors) errors[message] = (errors[message] ?? 0) + 1;
    }
    if (Date.now() - reported > 2000) { reported = Date.now(); log(`load: ${rooms.length} joined, ${failed} failed`); }
  });
  return { joined: rooms.length, failed, seconds: (performance.now() - started) / 1000, errors };
}

async function leaveAll(): Promise<number> {
  const leaving = rooms.splice(0);
  await inParallel(leaving.length, 200, async (i) => { await leaving[i].leave().catch(() => {}); });
  return leaving.length;
}

serveParent({ joinAll, open: () => open, leaveAll }, null);
