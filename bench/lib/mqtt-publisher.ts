/**
 * Bench child: the simulated sensors of the mqtt bench. Each sensor is an MQTT.js client
 * of its own (as each real sensor has its own connection to the site's broker) and
 * publishes JSON readings (lib/mqtt-protocol.ts) at QoS `qos`.
 *
 * A child process, not the orchestrator: at thousands of publishes a second MQTT.js keeps
 * an event loop busy, and the process that timestamps the room's frames (the observer)
 * must not wait behind it, or its receive times would measure this load and not the path.
 *
 * `run` publishes at `rate` readings/s in all, round-robin over the sensors, paced on a
 * 1 ms timer against the time since the run began (a late tick catches up, at most 20 ms
 * worth at once), for `warmupMs` then `windowMs`; it returns the publish time of every
 * reading of the window by sensor and sequence (lib/mqtt-figures.ts matches them to the
 * frames), and how many it published: below the rate asked, the publisher was the limit.
 * Ready data: null.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { connectAsync, type MqttClient } from "mqtt";
import { LoopDelayWindow, round, wallClockMs } from "./measure.ts";
import { readingPayload, readingTopic, sensorId, type PublishRequest, type PublishRun, type PublisherConfig } from "./mqtt-protocol.ts";
import { serveParent } from "./parent-channel.ts";
import { withConcurrency } from "./tasks.ts";

const config = JSON.parse(process.argv[2] ?? "null") as PublisherConfig;
/** The most a late tick publishes at once: 20 ms worth of the rate. */
const CATCH_UP_MS = 20;

const clients: MqttClient[] = new Array(config.sensors);
await withConcurrency(Array.from({ length: config.sensors }, (_, i) => i), 20, async (i) => {
  const client = await connectAsync(config.brokerUrl, {
    clientId: `bench-${config.runId}-${sensorId(i)}`, reconnectPeriod: 0, connectTimeout: 10_000, keepalive: 60,
  });
  client.on("error", (error) => process.stderr.write(`sensor ${sensorId(i)}: ${error.message}\n`));
  clients[i] = client;
});
/** Each sensor's newest sequence, over the whole run (both prefixes): values only go up. */
const seqs = new Array<number>(config.sensors).fill(0);
let errors = 0;
const countError = (error?: Error) => { if (error) errors++; };

async function run({ prefix, rate, warmupMs, windowMs }: PublishRequest): Promise<PublishRun> {
  const n = config.sensors;
  const topics = Array.from({ length: n }, (_, i) => readingTopic(prefix, i));
  const options = { qos: config.qos };
  const firstSeq = new Array<number>(n).fill(-1);
  const times: number[][] = Array.from({ length: n }, () => []);
  const lastSeq = new Array<number>(n).fill(-1);
  const loopDelay = new LoopDelayWindow();
  loopDelay.start();
  const errorsBefore = errors;
  const startedAt = wallClockMs();
  const windowStartMs = startedAt + warmupMs;
  const windowEndMs = windowStartMs + windowMs;
  const catchUp = Math.max(1, Math.ceil((rate * CATCH_UP_MS) / 1000));
  let sentTotal = 0;
  let sent = 0;
  let next = 0;
  for (;;) {
    const now = wallClockMs();
    if (now >= windowEndMs) break;
    const due = Math.min(catchUp, Math.floor((rate * (now - startedAt)) / 1000) - sentTotal);
    for (let k = 0; k < due; k++) {
      const i = next;
      next = (next + 1) % n;
      const seq = ++seqs[i]!;
      lastSeq[i] = seq;
      const sentAt = round(wallClockMs(), 3);
      clients[i]!.publish(topics[i]!, readingPayload(i, seq, sentAt), options, countError);
      sentTotal++;
      if (sentAt >= windowStartMs && sentAt < windowEndMs) {
        if (firstSeq[i] === -1) firstSeq[i] = seq;
        times[i]!.push(round(sentAt - windowStartMs, 3));
        sent++;
      }
    }
    await sleep(1);
  }
  return {
    windowStartMs, windowEndMs, sent, sentTotal, errors: errors - errorsBefore, firstSeq, times, lastSeq,
    eventLoopDelayP99Ms: round(loopDelay.stopP99Ms()),
  };
}

serveParent({ run });
