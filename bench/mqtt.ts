/**
 * MQTT bench: sensor readings per second from Mosquitto to a site room's telemetry on one
 * node, and how late they reach a client, against the broker alone in the same run.
 *
 * The path, as test/integration/mqtt-sensors.test.ts sets it up (lib/mqtt-setup.ts): the
 * bench's own Mosquitto on a free loopback port (lib/mqtt-broker.ts); a region node on the
 * Redis at `--redis-url` (database 0 by default, a cluster name of the run's own, its keys
 * deleted at the end); a sensors device enrolled there and its adapter process running the
 * mqtt-sensors driver; a supervisor in the site's teleop room, through the client SDK,
 * decoding the telemetry frames (lib/mqtt-observer.ts). `sensors` simulated sensors, each
 * its own MQTT.js connection, publish JSON readings from a child process
 * (lib/mqtt-publisher.ts), round-robin at a total rate stepped up through `--steps`.
 *
 * What the pipeline does with them: the driver keeps each sensor's newest reading; the
 * adapter samples all of them into Telemetry at `adapter-hz`; the room fans the newest
 * Telemetry out at the node's telemetry rate (`room-hz`). So a client cannot see every
 * reading: "delivered" and "coalesced" are defined in lib/mqtt-figures.ts (delivered when
 * a frame first shows the sensor at or past the reading; coalesced when that frame shows
 * a newer one). Latency is publish → that frame's receipt, for every delivered reading.
 *
 * Each step runs the Tsunagi phase and the baseline phase (the same load on another
 * prefix, to a plain MQTT.js subscriber on the same broker: what the broker alone costs)
 * in turns, the order alternating from step to step (lib/mqtt-phases.ts).
 *
 * A step **keeps up** when the driver ingests ≥ 99 % of what was published (its
 * `messages` counter on the adapter's status endpoint), ≥ 99 % of the window's readings
 * are delivered, and their p99 is within twice the sampling bound (one adapter period
 * plus one room period: 2 × (50 + 100) = 300 ms at the defaults). Stepping stops at the
 * first step that does not, or at which the publisher could not offer 95 % of the rate
 * (the load, not the path, was then the limit). readingsPerSec is the driver's ingest
 * rate over the window of the highest step that kept up; `limitedBy` says what failed
 * next: "tsunagi", "broker" (the baseline failed too), "publisher", or null (none did:
 * readingsPerSec is then a lower bound).
 *
 * With `--pin true` (default, on 2+ cores), the system under test (broker, node,
 * adapter) runs on CPU 0 and the load (publisher, observer) on the others: the figures
 * are then those of one core for the whole edge-to-room path.
 *
 * @example
 *   npm run bench -- mqtt
 *   npm run bench -- mqtt --sensors 50 --steps 1000,4000 --seconds 3 --qos 0
 */
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { z } from "zod";
import { defineBench } from "./lib/bench.ts";
import { BenchChild, serverAndLoadCpus } from "./lib/child-process.ts";
import { log, round } from "./lib/measure.ts";
import { startBroker, type BenchBroker } from "./lib/mqtt-broker.ts";
import { baselinePhase, tsunagiPhase, type BaselinePhase, type PhaseContext, type TsunagiPhase } from "./lib/mqtt-phases.ts";
import type { ObserverConfig, PublisherConfig } from "./lib/mqtt-protocol.ts";
import { loopbackRedisUrl, SENSORS_DEVICE, startRig, type Rig } from "./lib/mqtt-setup.ts";

const booleanFlag = z.union([z.boolean(), z.enum(["true", "false"]).transform((flag) => flag === "true")], { error: "must be true or false" });

export const mqttBenchOptions = z.object({
  /** Simulated sensors. At most 256: a Telemetry carries 256 readings (TELEMETRY_LIMITS), and one it left out could never be delivered. */
  sensors: z.coerce.number().int().min(1).max(256).default(200),
  /** Offered rates, readings/s of all sensors together, in increasing order. */
  steps: z.string().default("500,1000,2000,4000,6000,8000,10000,12000,16000").transform((text, ctx) => {
    const rates = text.split(",").map((part) => Number(part.trim()));
    if (!rates.every((rate) => Number.isInteger(rate) && rate > 0) || rates.some((rate, i) => i > 0 && rate <= rates[i - 1]!)) {
      ctx.addIssue({ code: "custom", message: "a comma-separated list of increasing whole readings/s, e.g. 500,1000,2000" });
      return z.NEVER;
    }
    return rates;
  }),
  /** Measuring window of each phase, s. */
  seconds: z.coerce.number().positive().default(5),
  /** Load before each window, s. */
  warmup: z.coerce.number().min(0).default(1),
  /** The adapter's telemetry rate (its --telemetry-hz; its default). */
  adapterHz: z.coerce.number().positive().max(100).default(20),
  /** The node's room telemetry rate (--teleop-telemetry-hz; its default). */
  roomHz: z.coerce.number().min(0.1).max(100).default(10),
  /** QoS the sensors publish at; the driver subscribes to readings at 1. */
  qos: z.enum(["0", "1"]).default("1").transform((qos) => Number(qos) as 0 | 1),
  pin: booleanFlag.default(true),
  /** The Redis the node uses (loopback only); its keys of this run are deleted at the end. */
  redisUrl: z.string().default("redis://127.0.0.1:6379/0"),
});

export type MqttBenchOptions = z.output<typeof mqttBenchOptions>;

/** Criteria of a step that keeps up (see the top). */
const MIN_INGEST_PCT = 99;
const MIN_DELIVERED_PCT = 99;
const P99_SAMPLING_BOUNDS = 2;
const MIN_OFFERED_SHARE = 0.95;
/** Load processes above this share of their cores: the load may bound the figures. */
const LOAD_SATURATED_SHARE = 0.9;
/** CPU of anything but the bench's processes above this, % of a core, during a window: the machine was not quiet. */
const BUSY_OTHER_PCT = 50;

export interface StepFigures extends TsunagiPhase {
  target: number;
  baselineOffered: number;
  /** Readings the baseline's window published (its own count: the two phases' publishers catch up differently). */
  baselineReadings: number;
  baselineReceived: number;
  baselineDuplicates: number;
  baselineLost: number;
  baselineP50Ms: number;
  baselineP99Ms: number;
  baselineMaxMs: number;
  baselineCpuPct: BaselinePhase["cpuPct"];
  /** broker + adapter + node in the Tsunagi window, % of one core (with --pin: what CPU 0 had to give). */
  sutCpuPct: number;
  keepsUp: boolean;
  /** Why it does not: "ingest", "delivery", "latency", "publisher". */
  failed: string[];
}

function drainBoundMs(options: MqttBenchOptions): number {
  return Math.max(2000, 4 * (1000 / options.adapterHz + 1000 / options.roomHz));
}

/** Runs the bench with `options` as bench/run.ts parsed them (mqttBenchOptions). */
export async function runMqttBench(options: MqttBenchOptions) {
  const redisUrl = loopbackRedisUrl(options.redisUrl);
  const runId = randomBytes(4).toString("hex");
  const cpus = options.pin ? serverAndLoadCpus() : undefined;
  const samplingBoundMs = 1000 / options.adapterHz + 1000 / options.roomHz;
  const p99LimitMs = P99_SAMPLING_BOUNDS * samplingBoundMs;
  const warnings: string[] = [];
  log(`mqtt bench ${runId}: ${options.sensors} sensors at QoS ${options.qos}; steps ${options.steps.join(", ")} readings/s; adapter ${options.adapterHz} Hz, room ${options.roomHz} Hz; `
    + (cpus ? `broker, node and adapter on CPU ${cpus.server}, publisher and observer on CPU ${cpus.load}` : "unpinned"));

  let broker: BenchBroker | undefined;
  let rig: Rig | undefined;
  const children: BenchChild[] = [];
  const steps: StepFigures[] = [];
  try {
    broker = await startBroker(runId, cpus?.server);
    log(`setup: mosquitto (pid ${broker.pid}) on ${broker.url}`);
    rig = await startRig({ runId, redisUrl, brokerUrl: broker.url, adapterHz: options.adapterHz, roomHz: options.roomHz, cpus: cpus?.server });
    const baselinePrefix = `baseline/${rig.site}`;
    const [publisher, observer] = await Promise.all([
      BenchChild.start<null>("publisher", "bench/lib/mqtt-publisher.ts", { runId, brokerUrl: broker.url, sensors: options.sensors, qos: options.qos } satisfies PublisherConfig, undefined, cpus?.load),
      BenchChild.start<null>("observer", "bench/lib/mqtt-observer.ts", {
        runId, httpUrl: rig.node.httpUrl, token: await rig.supervisorToken(), roomId: `bench-mqtt-${runId}`, deviceId: SENSORS_DEVICE,
        brokerUrl: broker.url, baselinePrefix, sensors: options.sensors,
      } satisfies ObserverConfig, undefined, cpus?.load),
    ]);
    children.push(publisher.child, observer.child);
    log(`setup: ${options.sensors} sensors connected; the supervisor is in the site room with ${SENSORS_DEVICE} online`);
    const ctx: PhaseContext = {
      publisher: publisher.child, observer: observer.child, driverCounters: () => rig!.driverCounters(),
      pids: { broker: broker.pid, adapter: rig.adapter.child.pid!, node: rig.node.child.pid!, publisher: publisher.child.pid, observer: observer.child.pid },
      tsunagiPrefix: `tsunagi/${rig.site}`, baselinePrefix,
      warmupMs: options.warmup * 1000, windowMs: options.seconds * 1000, drainMs: drainBoundMs(options),
    };
    for (const [index, target] of options.steps.entries()) {
      let tsunagi: TsunagiPhase | undefined;
      let baseline: BaselinePhase | undefined;
      // Tsunagi first on even steps, the baseline first on odd ones: a drift of the machine weighs on both.
      for (const phase of index % 2 === 0 ? ["tsunagi", "baseline"] : ["baseline", "tsunagi"]) {
        log(`step ${index + 1}: ${target} readings/s, ${phase}`);
        if (phase === "tsunagi") tsunagi = await tsunagiPhase(ctx, target);
        else baseline = await baselinePhase(ctx, target);
      }
      const step = stepFigures(target, tsunagi!, baseline!, p99LimitMs);
      steps.push(step);
      report(step, cpus === undefined ? undefined : availableParallelism() - 1, warnings);
      if (!step.keepsUp) break;
    }
  } catch (error) {
    if (broker) log(`mosquitto's last lines:\n${broker.output()}`);
    if (rig) log(`the adapter's last output:\n${rig.adapter.output().slice(-2000)}`);
    throw error;
  } finally {
    for (const child of children) child.kill();
    await rig?.close().catch((error: Error) => log(`cleanup: ${error.message}`));
    await broker?.stop();
  }

  const knee = steps.filter((step) => step.keepsUp).at(-1);
  const failed = steps.find((step) => !step.keepsUp);
  const limitedBy = !failed ? null
    : failed.failed.includes("publisher") ? "publisher"
      : failed.baselineReceived < (MIN_DELIVERED_PCT / 100) * failed.baselineReadings || failed.baselineP99Ms > p99LimitMs ? "broker" : "tsunagi";
  log(knee
    ? `result: ${knee.ingestedPerSec} readings/s ingested at ${knee.target}/s offered, p99 ${knee.p99Ms} ms (broker alone ${knee.baselineP99Ms} ms); `
      + `${failed ? `the next step (${failed.target}/s) failed on ${failed.failed.join(", ")}: limited by ${limitedBy}` : "every step kept up: a lower bound"}`
    : `result: not even the first step (${steps[0]?.target}/s) kept up (${failed?.failed.join(", ")}); limited by ${limitedBy}`);
  for (const step of [knee, failed]) {
    if (!step) continue;
    log(`where the time goes at ${step.target}/s (p50/p99, carried readings): broker alone ${step.baselineP50Ms}/${step.baselineP99Ms} ms; publish → driver ${step.driverP50Ms}/${step.driverP99Ms} ms; `
      + `driver → the sample the room forwarded ${step.sampleP50Ms}/${step.sampleP99Ms} ms (ticks every ${round(1000 / options.adapterHz)} ms, the room forwarding one sample every ${round(1000 / options.roomHz)} ms); `
      + `sample → client ${step.fanOutP50Ms}/${step.fanOutP99Ms} ms; broker + adapter + node ${step.sutCpuPct} % of a core${cpus ? ` (all on CPU ${cpus.server})` : ""}`);
  }
  for (const warning of warnings) log(`WARNING ${warning}`);

  return {
    bench: "mqtt",
    runId,
    sensors: options.sensors,
    qos: options.qos,
    telemetryHz: options.roomHz,
    adapterHz: options.adapterHz,
    seconds: options.seconds,
    pinned: cpus !== undefined,
    /** One adapter period plus one room period: how late sampling alone may make a reading, ms. */
    samplingBoundMs: round(samplingBoundMs),
    knee: { minIngestPct: MIN_INGEST_PCT, minDeliveredPct: MIN_DELIVERED_PCT, p99LimitMs: round(p99LimitMs), minOfferedPct: MIN_OFFERED_SHARE * 100 },
    steps,
    readingsPerSec: knee?.ingestedPerSec ?? null,
    offered: knee?.target ?? null,
    p99Ms: knee?.p99Ms ?? null,
    baselineP99Ms: knee?.baselineP99Ms ?? null,
    limitedBy,
    warnings,
  };
}

function stepFigures(target: number, tsunagi: TsunagiPhase, baseline: BaselinePhase, p99LimitMs: number): StepFigures {
  const failed: string[] = [];
  if (tsunagi.ingested < (MIN_INGEST_PCT / 100) * tsunagi.published) failed.push("ingest");
  if (tsunagi.delivered < (MIN_DELIVERED_PCT / 100) * tsunagi.readings) failed.push("delivery");
  if (!(tsunagi.p99Ms <= p99LimitMs)) failed.push("latency");
  if (Math.min(tsunagi.offered, baseline.offered) < MIN_OFFERED_SHARE * target) failed.push("publisher");
  return {
    target, ...tsunagi,
    baselineOffered: baseline.offered, baselineReadings: baseline.readings, baselineReceived: baseline.received, baselineDuplicates: baseline.duplicates, baselineLost: baseline.lost,
    baselineP50Ms: baseline.p50Ms, baselineP99Ms: baseline.p99Ms, baselineMaxMs: baseline.maxMs, baselineCpuPct: baseline.cpuPct,
    sutCpuPct: round(tsunagi.cpuPct.broker! + tsunagi.cpuPct.adapter! + tsunagi.cpuPct.node!, 1),
    keepsUp: failed.length === 0, failed,
  };
}

/** A step's progress lines, and warnings for what makes its figures doubtful. */
function report(step: StepFigures, loadCores: number | undefined, warnings: string[]): void {
  const pct = (part: number, whole: number) => (whole > 0 ? round((100 * part) / whole, 1) : 0);
  log(`  tsunagi: offered ${step.offered}/s, ingested ${step.ingestedPerSec}/s (${pct(step.ingested, step.published)} % of ${step.published} by the drain); `
    + `delivered ${pct(step.delivered, step.readings)} % (${step.carried} carried, ${step.coalesced} coalesced, ${step.lost} lost), ${step.framesPerSec} frames/s; `
    + `p50 ${step.p50Ms} ms, p95 ${step.p95Ms} ms, p99 ${step.p99Ms} ms, max ${step.maxMs} ms; `
    + `stages p50/p99: publish → driver ${step.driverP50Ms}/${step.driverP99Ms} ms, → sample ${step.sampleP50Ms}/${step.sampleP99Ms} ms, → client ${step.fanOutP50Ms}/${step.fanOutP99Ms} ms`);
  log(`  baseline: offered ${step.baselineOffered}/s, received ${pct(step.baselineReceived, step.baselineReadings)} %${step.baselineDuplicates ? ` (+${step.baselineDuplicates} duplicates)` : ""}, `
    + `p50 ${step.baselineP50Ms} ms, p99 ${step.baselineP99Ms} ms, max ${step.baselineMaxMs} ms`);
  log(`  CPU % of a core: ${Object.entries(step.cpuPct).map(([name, value]) => `${name} ${value}`).join(", ")}; baseline: ${Object.entries(step.baselineCpuPct).map(([name, value]) => `${name} ${value}`).join(", ")}`);
  log(`  ${step.keepsUp ? "keeps up" : `does not keep up: ${step.failed.join(", ")}`}`);
  const at = `at ${step.target}/s`;
  if (step.negative > 0) warnings.push(`${at}: ${step.negative} negative latencies (clocks disagree): the figures are suspect`);
  if (step.malformed + step.refused > 0) warnings.push(`${at}: the driver counted ${step.malformed} malformed and ${step.refused} refused readings`);
  if (step.publishErrors > 0) warnings.push(`${at}: ${step.publishErrors} publishes failed`);
  for (const [phase, cpu] of [["tsunagi", step.cpuPct], ["baseline", step.baselineCpuPct]] as const) {
    if (cpu.other! > BUSY_OTHER_PCT) warnings.push(`${at}, ${phase} phase: other work took ${cpu.other} % of a core: the machine was not quiet, the figures may be low`);
    const load = round(cpu.publisher! + cpu.observer!, 1);
    if (loadCores !== undefined && load > LOAD_SATURATED_SHARE * 100 * loadCores) {
      warnings.push(`${at}, ${phase} phase: the load processes used ${load} % of their ${loadCores} core(s): the load may bound that phase's figures`);
    }
  }
}

export const mqttBench = defineBench({
  description: "sensor readings/s from Mosquitto through the mqtt-sensors adapter to a site room's client, stepped up; p99 publish → frame; baseline: the broker alone",
  options: mqttBenchOptions,
  // Set-up (a node, an adapter and two children under tsx), then per step two phases of warm-up, window and drain.
  timeoutSeconds: (options) => Math.ceil(90 + options.steps.length * 2 * (options.warmup + options.seconds + drainBoundMs(options) / 1000 + 5)),
  run: (options) => runMqttBench(options),
});
