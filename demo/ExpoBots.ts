/**
 * Bot visitors for demos and load: each joins a hall through ExpoSession and walks from
 * booth to booth at walking pace, lingering a while at each, moving `hz` times a second.
 *
 * @example
 *   const bots = await startExpoBots({ url: node.httpUrl, hallId: "expo-demo", count: 12, token: (i) => issue(`bot-${i}`) });
 *   await bots.stop();
 */
import { TsunagiClient } from "../client-sdk/TsunagiClient.ts";
import { ExpoSession } from "../client-sdk/ExpoSession.ts";

export interface ExpoBotsOptions {
  url: string;
  hallId: string;
  count: number;
  /** A visitor token for bot `index`. */
  token: (index: number) => string | Promise<string>;
  /** Moves per second. Default 5. */
  hz?: number;
  /** Walking speed, m/s. Default 1.3. */
  speed?: number;
  /** Seconds at a booth, min and max. Default 4..12. */
  dwellSeconds?: [number, number];
  /** Where a bot's failures go. Default: ignored (bots are scenery). */
  onError?: (error: unknown) => void;
}

export interface ExpoBots {
  readonly sessions: readonly ExpoSession[];
  stop(): Promise<void>;
}

const avatars = ["fox", "owl", "cat", "crane", "tanuki", "deer"];

export async function startExpoBots(options: ExpoBotsOptions): Promise<ExpoBots> {
  const hz = options.hz ?? 5;
  const speed = options.speed ?? 1.3;
  const [dwellMin, dwellMax] = options.dwellSeconds ?? [4, 12];
  const onError = options.onError ?? (() => {});
  const sessions: ExpoSession[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < options.count; i++) {
    const client = new TsunagiClient({ url: options.url, token: await options.token(i) });
    const session = await ExpoSession.join(client, options.hallId, { name: `Bot ${i + 1}`, avatar: avatars[i % avatars.length], session: { onListenerError: onError } });
    session.on("error", onError);
    sessions.push(session);
    const booths = session.hall.booths;
    let target = { x: session.me.x, y: session.me.y };
    let dwellUntil = 0;
    const pick = () => {
      const booth = booths.length ? booths[Math.floor(Math.random() * booths.length)] : undefined;
      const area = booth?.area;
      target = area
        ? { x: area.x! + Math.random() * area.w!, y: area.y! + Math.random() * area.h! }
        : { x: Math.random() * session.hall.width, y: Math.random() * session.hall.height };
    };
    pick();
    const step = speed / hz;
    const timer = setInterval(() => {
      if (session.closed) return;
      const now = Date.now();
      if (now < dwellUntil) return;
      const { x, y } = session.me;
      const dx = target.x - x, dy = target.y - y;
      const distance = Math.hypot(dx, dy);
      if (distance <= step) {
        try { session.move(target.x, target.y, Math.atan2(dy, dx)); } catch (error) { onError(error); }
        dwellUntil = now + (dwellMin + Math.random() * (dwellMax - dwellMin)) * 1000;
        pick();
        return;
      }
      try { session.move(x + (dx / distance) * step, y + (dy / distance) * step, Math.atan2(dy, dx)); } catch (error) { onError(error); }
    }, 1000 / hz);
    timers.push(timer);
  }
  return {
    sessions,
    async stop() {
      for (const timer of timers) clearInterval(timer);
      await Promise.all(sessions.map((session) => session.leave().catch(() => {})));
    },
  };
}
