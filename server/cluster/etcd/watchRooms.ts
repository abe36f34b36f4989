/**
 * The directory's changes, from an etcd watch on the rooms prefix: a put is an upsert (a
 * claim, transfer, listing update or reassert), a delete a remove (a release, a sweep, or
 * the owner's lease expiring or being revoked). After a dropped connection the client
 * resumes the watch from the last revision it saw, so nothing in between is missed; a
 * watch etcd cancels (its revision compacted away) is started again from now, and the
 * readers that keep a listing (the lobby) refresh it from list() on their own timer.
 */
import type { IKeyValue, Watcher } from "etcd3";
import type { DirectoryChange } from "../types.ts";
import type { EtcdSession } from "./EtcdSession.ts";
import { EtcdKeys, decodeEntry } from "./keys.ts";

/** Watches the rooms prefix until the returned function is called. */
export async function watchRooms(session: EtcdSession, keys: EtcdKeys, listener: (change: DirectoryChange) => void, timeoutMs: number): Promise<() => Promise<void>> {
  let watcher: Watcher | undefined;
  let stopped = false;
  const deliver = (change: DirectoryChange) => {
    if (stopped) return;
    try { listener(change); } catch { /* a faulty listener must not break the watch */ }
  };
  const start = async (): Promise<void> => {
    const next = session.client.watch().prefix(keys.rooms).watcher();
    let connected = false;
    next.on("put", (kv: IKeyValue) => {
      let entry;
      try { entry = decodeEntry(kv); } catch { return; } // not ours to read
      deliver({ kind: "upsert", entry });
    });
    next.on("delete", (kv: IKeyValue) => deliver({ kind: "remove", roomId: keys.idOf(kv.key, keys.rooms) }));
    next.on("error", () => {
      if (!connected || stopped || watcher !== next) return;
      watcher = undefined;
      void next.cancel().catch(() => {});
      const retry = () => { if (!stopped) start().catch(() => setTimeout(retry, 1000).unref()); };
      retry();
    });
    try {
      await bounded(new Promise<void>((resolve, reject) => {
        next.once("connected", () => resolve());
        next.once("error", reject);
      }), timeoutMs, "starting a watch on the rooms");
    } catch (error) {
      await next.cancel().catch(() => {});
      throw error;
    }
    connected = true;
    if (stopped) { await next.cancel().catch(() => {}); return; }
    watcher = next;
  };
  await start();
  return async () => {
    stopped = true;
    const current = watcher;
    watcher = undefined;
    await current?.cancel().catch(() => { /* the client is closing */ });
  };
}

/** `promise`, or an error after `timeoutMs`. */
function bounded(promise: Promise<void>, timeoutMs: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: etcd did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
