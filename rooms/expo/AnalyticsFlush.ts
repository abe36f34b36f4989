/**
 * A zone room's analytics on their way to the hall's figures (AnalyticsStore): what
 * changed since the last flush is added there, one flush at a time (a slow Redis gets
 * one flush, not a pile), and what could not be stored goes with the next.
 *
 * @example
 *   const flush = new AnalyticsFlush({ analytics, store, zone: "east", hallId, logger });
 *   void flush.publish();      // every second
 *   await flush.all();         // before a report, at close: everything up to now
 */
import type { Logger } from "../../server/observability/logging.ts";
import type { ExpoAnalytics } from "./Analytics.ts";
import type { AnalyticsStore } from "./AnalyticsStore.ts";

export interface AnalyticsFlushOptions {
  analytics: ExpoAnalytics;
  store: AnalyticsStore;
  /** This zone's name in the hall's analytics (UNZONED for a hall of none). */
  zone: string;
  hallId: string;
  logger: Pick<Logger, "warn">;
}

export class AnalyticsFlush {
  /** The flush under way, if any. */
  private running?: Promise<void>;

  constructor(readonly options: AnalyticsFlushOptions) {}

  /** Adds what changed since the last flush to the hall's figures (or joins the flush under way). */
  publish(): Promise<void> {
    const { analytics, store, zone, hallId, logger } = this.options;
    return this.running ??= (async () => {
      try {
        const failed = await store.flush(zone, analytics.takeDelta());
        if (failed) {
          analytics.putBack(failed);
          logger.warn({ hallId }, "could not store all of this second's expo analytics; retrying with the next");
        }
      } catch (error) {
        logger.warn({ err: error, hallId }, "could not store expo analytics");
      } finally {
        this.running = undefined;
      }
    })();
  }

  /** Stores everything up to now: after the flush under way (which may have started before the latest changes), one more. */
  async all(): Promise<void> {
    await this.running;
    await this.publish();
  }
}
