/**
 * Calls a route every `everyMs` with the page's token (app/api.ts) and keeps the last
 * answer, and when it came. Stops with the component; a slow answer is never overtaken
 * (one call at a time).
 *
 * @example
 *   const regions = usePoll<RegionsBody>(token, "/regions", 3000);
 *   if (regions.answer?.ok) regions.answer.body.regions;
 */
import { useEffect, useState } from "preact/hooks";
import { callApi, type ApiAnswer } from "../../app/api.ts";

export interface Polled<T> { answer?: ApiAnswer<T>; at?: number; count: number }

export function usePoll<T>(token: string, path: string | undefined, everyMs: number): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ count: 0 });
  useEffect(() => {
    setState({ count: 0 });
    if (!path) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const controller = new AbortController();
    const tick = async () => {
      const answer = await callApi<T>(token, path, { signal: controller.signal });
      if (stopped) return;
      setState((old) => ({ answer, at: Date.now(), count: old.count + 1 }));
      timer = setTimeout(() => void tick(), everyMs);
    };
    void tick();
    return () => { stopped = true; controller.abort(); clearTimeout(timer); };
  }, [token, path, everyMs]);
  return state;
}

/** "12:03:04" for an epoch ms. */
export function clock(at: number | undefined): string {
  return at ? new Date(at).toLocaleTimeString([], { hour12: false }) : "—";
}
