/**
 * The mqtt bench's delivery figures: the publisher's record of every reading of a window
 * (sensor, sequence, publish time) against what the site room's frames showed (the
 * observer's advances: the first frame showing each higher sequence of a sensor).
 *
 * A reading is **delivered** when a telemetry frame the client receives first shows its
 * sensor at or past its sequence: from then on the client's view holds it, or something
 * newer. Its latency is publish → the client's receipt of that frame. Of the delivered:
 * - **carried**: that frame shows this very reading;
 * - **coalesced**: it shows a newer one; this reading was superseded before a frame
 *   carried it (the driver keeps only each sensor's newest reading, and the adapter and
 *   the room send the newest telemetry at their rates). Not lost: the view moved past it.
 * A reading no frame reached by the end of the drain is **lost**.
 *
 * The latency of a coalesced reading counts too, to the first frame past it: it is how
 * long the client's view lagged behind that reading, and leaving it out would keep only
 * the readings that happened to be the newest at a sample, the quickest ones.
 *
 * For carried readings the frame also says when the driver received the reading (its
 * readAtMs: the publisher sends no `ts`, so the driver stamps its arrival) and when the
 * adapter sampled it (Telemetry sampled_at_ms), which splits the path in three:
 * - driver: publish → the driver's receipt (the broker, the adapter's socket and event loop);
 * - sample: → the adapter sample this frame carries (the wait for the adapter's tick,
 *   and for the one whose sample the room forwarded: it forwards the newest at its own
 *   rate, so with the adapter at 20 Hz and the room at 10 Hz every other sample is dropped);
 * - fanOut: that sample → the client (the device link, the wait for the room's tick,
 *   the room's encoding, the client's socket).
 * readAtMs is whole milliseconds, so the first two are good to ±1 ms.
 */
import { LatencyHistogram, mergedPercentiles, round } from "./measure.ts";
import { ADVANCE_FIELDS, type Advances, type BaselineWindow, type PublishRun } from "./mqtt-protocol.ts";

export interface DeliveryFigures {
  /** Readings published in the window. */
  readings: number;
  delivered: number;
  carried: number;
  coalesced: number;
  lost: number;
  /** Publish → first frame at or past the reading, ms. */
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Carried readings only, the three stages (see the top), ms. */
  driverP50Ms: number;
  driverP99Ms: number;
  sampleP50Ms: number;
  sampleP99Ms: number;
  fanOutP50Ms: number;
  fanOutP99Ms: number;
  /** Latencies below zero: the clocks disagree (the figures are then suspect). */
  negative: number;
}

export function deliveryFigures(run: PublishRun, observed: Advances): DeliveryFigures {
  const latency = new LatencyHistogram();
  const [driver, sample, fanOut] = [new LatencyHistogram(), new LatencyHistogram(), new LatencyHistogram()];
  let delivered = 0;
  let carried = 0;
  let lost = 0;
  let maxMs = 0;
  let negative = 0;
  for (let i = 0; i < run.times.length; i++) {
    const first = run.firstSeq[i]!;
    if (first < 0) continue;
    const times = run.times[i]!;
    const advances = observed.advances[i] ?? [];
    let k = 0;
    for (let j = 0; j < times.length; j++) {
      const seq = first + j;
      const publishedAt = run.windowStartMs + times[j]!;
      // advances are in increasing sequence: the first at or past this one
      while (k < advances.length && advances[k]! < seq) k += ADVANCE_FIELDS;
      if (k >= advances.length) { lost++; continue; }
      const [shown, receivedAt, sampledAt, readAt] = [advances[k]!, advances[k + 1]!, advances[k + 2]!, advances[k + 3]!];
      const ms = receivedAt - publishedAt;
      latency.record(ms);
      maxMs = Math.max(maxMs, ms);
      delivered++;
      if (shown === seq) {
        carried++;
        // readAt is Date.now()'s whole ms (the arrival lies within the ms after it): its middle, and a
        // stage a hair below 0 is that rounding, not the clocks
        driver.record(Math.max(0, readAt + 0.5 - publishedAt));
        sample.record(Math.max(0, sampledAt - readAt));
        fanOut.record(receivedAt - sampledAt);
        negative += Number(readAt + 1 < publishedAt - 1 || sampledAt < readAt - 1);
      }
    }
  }
  const [p50Ms, p95Ms, p99Ms] = percentiles(latency, [50, 95, 99]);
  const [driverP50Ms, driverP99Ms] = percentiles(driver, [50, 99]);
  const [sampleP50Ms, sampleP99Ms] = percentiles(sample, [50, 99]);
  const [fanOutP50Ms, fanOutP99Ms] = percentiles(fanOut, [50, 99]);
  negative += latency.toData().negative + fanOut.toData().negative;
  return {
    readings: run.sent, delivered, carried, coalesced: delivered - carried, lost,
    p50Ms: p50Ms!, p95Ms: p95Ms!, p99Ms: p99Ms!, maxMs: round(maxMs),
    driverP50Ms: driverP50Ms!, driverP99Ms: driverP99Ms!, sampleP50Ms: sampleP50Ms!, sampleP99Ms: sampleP99Ms!, fanOutP50Ms: fanOutP50Ms!, fanOutP99Ms: fanOutP99Ms!,
    negative,
  };
}

export interface BaselineFigures {
  readings: number;
  received: number;
  duplicates: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  negative: number;
}

export function baselineFigures(run: PublishRun, window: BaselineWindow): BaselineFigures {
  const [p50Ms, p99Ms] = mergedPercentiles([window.latency], [50, 99]).map((ms) => round(ms));
  return { readings: run.sent, received: window.received, duplicates: window.duplicates, lost: Math.max(0, run.sent - window.received), p50Ms: p50Ms!, p99Ms: p99Ms!, maxMs: window.maxMs, negative: window.latency.negative };
}

/** Percentiles of `histogram`, ms to 0.01 (null-free: NaN when it is empty, as the JSON's null). */
function percentiles(histogram: LatencyHistogram, ps: number[]): number[] {
  return mergedPercentiles([histogram.toData()], ps).map((ms) => round(ms));
}
