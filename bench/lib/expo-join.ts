/**
 * A bench visitor joining a hall: each attempt bounded in time, a failed one counted by
 * its code and retried after a growing wait, the set-up failing after the last. Shared
 * by the expo and handoff benches' load processes.
 *
 * @example
 *   const session = await joinHall(client, hallId, index, errors);
 */
import { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import type { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import type { TsunagiError } from "../../client-sdk/errors.ts";
import { countInto, withTimeout } from "./tasks.ts";

/** How long one visitor's join (token, matchmaking, welcome) may take. */
const JOIN_TIMEOUT_MS = 30_000;
/** Join attempts per visitor before the set-up fails. */
const JOIN_ATTEMPTS = 3;

/** Joins visitor `index` to `hallId` through `client`; each failed attempt goes into `errors`. */
export async function joinHall(client: TsunagiClient, hallId: string, index: number, errors: Record<string, number>): Promise<ExpoSession> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTimeout(ExpoSession.join(client, hallId, { name: `Visitor ${index}` }), JOIN_TIMEOUT_MS, `visitor ${index}: join`);
    } catch (error) {
      countInto(errors, `join: ${(error as TsunagiError).codeName ?? (error as Error).message}`);
      if (attempt >= JOIN_ATTEMPTS) throw new Error(`visitor ${index}: join failed ${attempt} times; last: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}
