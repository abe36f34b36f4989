/**
 * Bench child: the load generator of the transport bench. Joins `clients` SDK clients
 * to one room of the broadcast server; each sends its send time `hz` times a second and
 * records the delivery latency of every stamp it receives. Argument: LoadConfig.
 * Ready (all clients joined and sending). Calls: startWindow, stopWindow → LoadWindow.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Client, type Room } from "@colyseus/sdk";
import { benchRoomName, stampMessage, type LoadConfig, type LoadWindow } from "./broadcast-protocol.ts";
import { percentile, wallClockMs } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as LoadConfig;

let measuring = false;
let sent = 0;
let latenciesMs: number[] = [];
let clientsLost = 0;
let windowStartMs = 0;
// Our own lag delays every receive we timestamp, so it is part of each latency we record.
const eventLoopDelayResolutionMs = 10;
const eventLoopDelay = monitorEventLoopDelay({ resolution: eventLoopDelayResolutionMs });

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
  eventLoopDelay.reset();
  eventLoopDelay.enable();
  measuring = true;
}

function stopWindow(): LoadWindow {
  measuring = false;
  eventLoopDelay.disable();
  const windowMs = performance.now() - windowStartMs;
  const sorted = Float64Array.from(latenciesMs).sort();
  return {
    windowMs,
    sent,
    delivered: sorted.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    // The histogram holds whole sampling intervals (lag + resolution): keep the lag only.
    eventLoopDelayP99Ms: eventLoopDelay.percentile(99) / 1e6 - eventLoopDelayResolutionMs,
    clientsLost,
  };
}

const rooms = await joinAll();
rooms.forEach(drive);
serveParent({ startWindow, stopWindow });
