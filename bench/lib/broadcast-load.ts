/**
 * Bench child: the load generator of the transport bench. Joins `clients` SDK clients
 * to one room of the broadcast server; each sends its send time `hz` times a second and
 * records the delivery latency of every stamp it receives. Argument: LoadConfig.
 * Ready (all clients joined and sending). Calls: startWindow, stopWindow → LoadWindow.
 */
import { Client, type Room } from "@colyseus/sdk";
import { benchRoomName, stampMessage, type LoadConfig, type LoadWindow } from "./broadcast-protocol.ts";
import { LatencyWindow, wallClockMs } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as LoadConfig;

let sent = 0;
let clientsLost = 0;
const latencyWindow = new LatencyWindow();

async function joinAll(): Promise<Room[]> {
  const client = new Client(config.url);
  // One create, then joins by id: concurrent joinOrCreate calls could open several rooms.
  const first = await client.create(benchRoomName);
  const others = await Promise.all(Array.from({ length: config.clients - 1 }, () => client.joinById(first.roomId)));
  return [first, ...others];
}

function drive(room: Room, index: number): void {
  room.onMessage(stampMessage, (sentAtMs: number) => {
    latencyWindow.record(wallClockMs() - sentAtMs);
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
    if (latencyWindow.measuring) sent++;
    nextSendAtMs += periodMs;
    setTimeout(sendOnSchedule, nextSendAtMs - performance.now());
  };
  setTimeout(sendOnSchedule, nextSendAtMs - performance.now());
}

function startWindow(): void {
  sent = 0;
  latencyWindow.start();
}

function stopWindow(): LoadWindow {
  return { ...latencyWindow.stop(), sent, clientsLost };
}

const rooms = await joinAll();
rooms.forEach(drive);
serveParent({ startWindow, stopWindow });
