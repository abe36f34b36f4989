/**
 * Bench child: the load generator of the transport bench. Joins `clients` SDK clients
 * to one room of the broadcast server; each sends its send time `hz` times a second and
 * records the delivery latency of every stamp it receives. Argument: LoadConfig.
 * Ready (all clients joined and sending). Calls: startWindow, stopWindow → LoadWindow.
 */
import { Client, type Room } from "@colyseus/sdk";
import { benchRoomName, stampMessage, type LoadConfig, type LoadWindow } from "./broadcast-protocol.ts";
import { LoopDelayWindow, percentile, wallClockMs } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as LoadConfig;

let measuring = false;
let sent = 0;
let latenciesMs: number[] = [];
let clientsLost = 0;
let windowStartMs = 0;
const loopDelay = new LoopDelayWindow();

async function joinAll(): Promise<Room[]> {
  const client = new Client(config.url);
  // One create, then joins by id: concurrent joinOrCreate calls could open several rooms.
  const first = await client.create(benchRoomName);
  const others = await Promise.all(Array.from({ length: config.clients - 1 }, () => client.joinById(first.roomId)));
  return [first, ...others];
}

function drive(room: Room, index: number): void {
  room.onMessage(stampMessage, (sentAtMs: number) => {
    if (measuring) latenciesMs.push(wallClockMs() - sentAtMs);
  });
  const countLoss = () => { clientsLost++; };
  room.onDrop(countLoss);
  room.onLeave(countLoss);

  const periodMs = 1000 / config.hz;
  // Spread the clients' sends evenly over one period, as independent clients would be.
  let nextSendAtMs = performance.now() + (index * periodMs) / config.clients;
  // Scheduled against absolute due times: setInterval drifts, sending ~1% under the rate.
  const sendOnSchedule = () => {
    room.send(stampMessage, wallClockMs());
    if (measuring) sent++;
    nextSendAtMs += periodMs;
    setTimeout(sendOnSchedule, nextSendAtMs - performance.now());
  };
  setTimeout(sendOnSchedule, nextSendAtMs - performance.now());
}

function startWindow(): void {
  sent = 0;
  latenciesMs = [];
  windowStartMs = performance.now();
  loopDelay.start();
  measuring = true;
}

function stopWindow(): LoadWindow {
  measuring = false;
  const eventLoopDelayP99Ms = loopDelay.stopP99Ms();
  const windowMs = performance.now() - windowStartMs;
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    windowMs,
    sent,
    delivered: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    eventLoopDelayP99Ms,
    clientsLost,
  };
}

const rooms = await joinAll();
rooms.forEach(drive);
serveParent({ startWindow, stopWindow });
