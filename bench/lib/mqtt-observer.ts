/**
 * Bench child: the mqtt bench's two receivers, in one process apart from the publisher
 * (whose load would otherwise delay their receive times) and used one at a time.
 *
 * - A supervisor in the site's teleop room, through the client SDK (TsunagiClient): it
 *   creates the room with the sensors device, as a site supervisor's console does, and
 *   decodes every telemetry frame. Per sensor it keeps the highest sequence any frame
 *   has shown (seqOfValue) and, while recording, each time a frame showed a higher one
 *   (an "advance": the sequence, when the frame arrived, when the adapter sampled it,
 *   when the driver received that reading; see Advances).
 * - The baseline: a plain MQTT.js subscriber on the same broker, subscribed as the
 *   driver is (MQTT 5, clean start, the readings filter at QoS 1) to a prefix only it
 *   uses; it parses each reading as the driver does and keeps its publish → receive
 *   latency (the reading's `sentAt`) and publish time, for `baselineWindow` to cut. A
 *   message that does not advance its sensor's sequence is a duplicate, counted apart.
 *
 * Calls: startRecording; maxSeen (highest sequence per sensor, frames / baseline);
 * stopRecording (Advances); baselineWindow({ fromMs, toMs }) (BaselineWindow), which
 * also forgets what the subscriber had kept. Ready data: null, once the device is
 * online in the room and the subscriber is subscribed.
 */
import "../../server/polyfills.ts";
import { connectAsync } from "mqtt";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import type { tsunagi } from "../../proto/index.ts";
import { LatencyHistogram, LoopDelayWindow, round, wallClockMs } from "./measure.ts";
import { sensorIndex, seqOfValue, type Advances, type BaselineWindow, type ObserverConfig } from "./mqtt-protocol.ts";
import { serveParent } from "./parent-channel.ts";

const config = JSON.parse(process.argv[2] ?? "null") as ObserverConfig;
const n = config.sensors;
const valid = (i: number) => i >= 0 && i < n;

// --- the site room ---------------------------------------------------------------------

const maxSeen = new Array<number>(n).fill(-1);
let advances: number[][] = [];
let recording = false;
let frames = 0;
let recordingStartedAt = 0;
const loopDelay = new LoopDelayWindow();

const client = new TsunagiClient({ url: config.httpUrl, token: config.token });
const session = await client.create("teleop", { roomId: config.roomId, devices: [config.deviceId] });
session.onEnvelope((envelope) => {
  if (envelope.body !== "telemetry") return;
  const receivedAt = wallClockMs();
  // the adapter's times are Date.now()'s (and the node's, as it estimates them): onto the wall clock
  const offset = Date.now() - receivedAt;
  const telemetry = envelope.telemetry as tsunagi.v1.Telemetry;
  if (telemetry.deviceId !== config.deviceId) return;
  const sampledAt = telemetry.sampledAtMs - offset;
  if (recording) frames++;
  // decoded bodies have every field set
  for (const reading of telemetry.readings as tsunagi.v1.SensorReading[]) {
    const i = sensorIndex(reading.sensorId);
    if (!valid(i)) continue;
    const seq = seqOfValue(i, reading.value);
    if (seq <= maxSeen[i]!) continue;
    maxSeen[i] = seq;
    if (recording) advances[i]!.push(seq, round(receivedAt, 3), round(sampledAt, 3), round(reading.readAtMs - offset, 3));
  }
});
const deadline = Date.now() + 20_000;
while (!session.deviceSnapshot(config.deviceId).lease?.online) {
  if (Date.now() > deadline) throw new Error(`the sensors device ${config.deviceId} is not online in room ${config.roomId} after 20 s`);
  await new Promise((resolve) => setTimeout(resolve, 50));
}

// --- the baseline subscriber -------------------------------------------------------------

let baselineSentAt: number[] = [];
let baselineLatency: number[] = [];
let baselineDuplicates = 0;
const baselineSeen = new Array<number>(n).fill(-1);
const subscriber = await connectAsync(config.brokerUrl, {
  clientId: `bench-${config.runId}-baseline`, protocolVersion: 5, clean: true, reconnectPeriod: 0, connectTimeout: 10_000,
  properties: { maximumPacketSize: 64 * 1024 },
});
subscriber.on("error", (error) => process.stderr.write(`baseline subscriber: ${error.message}\n`));
subscriber.on("message", (topic, payload) => {
  const receivedAt = wallClockMs();
  // as the driver does: the whole JSON parsed, the sensor from the topic
  const reading = JSON.parse(payload.toString("utf8")) as { value: number; sentAt: number };
  const i = sensorIndex(topic.split("/").at(-2) ?? "");
  if (!valid(i)) return;
  const seq = seqOfValue(i, reading.value);
  if (seq <= baselineSeen[i]!) { baselineDuplicates++; return; }
  baselineSeen[i] = seq;
  baselineSentAt.push(reading.sentAt);
  baselineLatency.push(receivedAt - reading.sentAt);
});
await subscriber.subscribeAsync(`${config.baselinePrefix}/sensors/+/reading`, { qos: 1 });

serveParent({
  startRecording: () => {
    advances = Array.from({ length: n }, () => []);
    frames = 0;
    recording = true;
    recordingStartedAt = performance.now();
    loopDelay.start();
  },
  maxSeen: ({ baseline }: { baseline: boolean }) => (baseline ? baselineSeen : maxSeen),
  stopRecording: (): Advances => {
    recording = false;
    return { advances, frames, recordingMs: round(performance.now() - recordingStartedAt), eventLoopDelayP99Ms: round(loopDelay.stopP99Ms()) };
  },
  startBaseline: () => {
    baselineSentAt = [];
    baselineLatency = [];
    baselineDuplicates = 0;
    loopDelay.start();
  },
  baselineWindow: ({ fromMs, toMs }: { fromMs: number; toMs: number }): BaselineWindow => {
    const histogram = new LatencyHistogram();
    let received = 0;
    let maxMs = 0;
    for (let k = 0; k < baselineSentAt.length; k++) {
      const sentAt = baselineSentAt[k]!;
      if (sentAt < fromMs || sentAt >= toMs) continue;
      received++;
      histogram.record(baselineLatency[k]!);
      maxMs = Math.max(maxMs, baselineLatency[k]!);
    }
    baselineSentAt = [];
    baselineLatency = [];
    return { received, duplicates: baselineDuplicates, latency: histogram.toData(), maxMs: round(maxMs), eventLoopDelayP99Ms: round(loopDelay.stopP99Ms()) };
  },
});
