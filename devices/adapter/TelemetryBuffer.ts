/**
 * The telemetry not yet sent, oldest first: the offline buffer while the adapter has no
 * link, and the backpressure queue while the link is slower than the samples. One
 * bounded queue for both, so a sample is sent in the order it was taken whichever way
 * it waited.
 *
 * Overflow: beyond `capacity` the oldest sample drops (and is counted). The room wants
 * the device as it is now; a stale sample is the one worth losing.
 *
 * @example
 *   const buffer = new TelemetryBuffer(600);
 *   buffer.push(sampleTelemetry(driver, profile, safety));
 *   buffer.flush(connection);            // sends what the link takes; keeps the rest
 */
import type { IEnvelope, tsunagi } from "../../proto/index.ts";

/** Where flush() sends: the adapter's link to the gateway (GatewayConnection). */
export interface TelemetryLink {
  /** Whether the link is welcomed and its socket open. */
  readonly canSend: boolean;
  /** Bytes written to the socket and not yet on the wire. */
  readonly bufferedBytes: number;
  /** Sends one envelope; false when it could not. */
  send(envelope: IEnvelope): boolean;
}

/** Above this many unsent bytes on the socket, telemetry waits in the buffer (dropping the oldest). */
export const TELEMETRY_BACKPRESSURE_BYTES = 256 * 1024;

export class TelemetryBuffer {
  /** Most samples kept unsent. */
  readonly capacity: number;

  /** Samples not yet sent, oldest first. */
  private readonly queue: tsunagi.v1.ITelemetry[] = [];
  /** Samples handed to the link. */
  private sentCount = 0;
  /** Samples dropped from the full buffer. */
  private droppedCount = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError(`TelemetryBuffer needs a positive integer capacity, got ${String(capacity)}`);
    this.capacity = capacity;
  }

  /** Samples waiting. */
  get size(): number {
    return this.queue.length;
  }

  /** Samples handed to the link so far. */
  get sent(): number {
    return this.sentCount;
  }

  /** Samples dropped so far, oldest first, because the buffer was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Queues a sample, dropping the oldest beyond `capacity`. */
  push(telemetry: tsunagi.v1.ITelemetry): void {
    this.queue.push(telemetry);
    while (this.queue.length > this.capacity) {
      this.queue.shift();
      this.droppedCount++;
    }
  }

  /**
   * Sends queued samples, oldest first, while the link can send and its socket keeps up
   * (at most TELEMETRY_BACKPRESSURE_BYTES unsent). A sample the link fails to send is
   * not retried: the next one is newer.
   */
  flush(link: TelemetryLink): void {
    if (!link.canSend) return;
    while (this.queue.length > 0 && link.bufferedBytes <= TELEMETRY_BACKPRESSURE_BYTES) {
      const telemetry = this.queue.shift()!;
      if (link.send({ correlationId: 0, telemetry })) this.sentCount++;
    }
  }
}
