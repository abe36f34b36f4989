/**
 * Walking: held keys (arrows / WASD) or a target spot (a click on the plan) turn into
 * VisitorMoves, STEP_HZ a second at WALK_SPEED metres a second, inside the hall.
 *
 * The room refuses moves beyond its `maxMoveHz` (RATE_LIMITED) and positions outside the
 * hall (OUT_OF_HALL); it sets no speed limit of its own. Walking sends at most half the
 * allowed rate, and only while the visitor actually moves.
 */
import type { ExpoSession } from "../../../../client-sdk/ExpoSession.ts";

/** Metres a second: a brisk walk (the demo's bots walk at 1.3). */
export const WALK_SPEED = 4;
/** Moves a second while walking. */
const STEP_HZ = 10;

const KEYS: Record<string, [number, number]> = {
  ArrowUp: [0, 1], KeyW: [0, 1], ArrowDown: [0, -1], KeyS: [0, -1],
  ArrowLeft: [-1, 0], KeyA: [-1, 0], ArrowRight: [1, 0], KeyD: [1, 0],
};

export function isWalkKey(code: string): boolean {
  return code in KEYS;
}

export class Walker {
  private readonly held = new Set<string>();
  private target?: { x: number; y: number };
  private timer?: ReturnType<typeof setInterval>;
  private readonly hz: number;

  constructor(private readonly expo: ExpoSession, private readonly onStep?: () => void) {
    this.hz = Math.max(1, Math.min(STEP_HZ, Math.floor((expo.maxMoveHz || 20) / 2)));
  }

  /** A walk key went down (returns whether it was one). */
  keyDown(code: string): boolean {
    if (!isWalkKey(code)) return false;
    this.held.add(code);
    this.target = undefined;
    this.run();
    return true;
  }

  keyUp(code: string): void {
    this.held.delete(code);
  }

  /** Stops walking by keys (the plan lost focus). */
  releaseKeys(): void {
    this.held.clear();
  }

  /** Walks to (x, y) in steps; keys take over when pressed. */
  walkTo(x: number, y: number): void {
    const { width, height } = this.expo.hall;
    this.target = { x: clamp(x, 0, width), y: clamp(y, 0, height) };
    this.run();
  }

  get destination(): { x: number; y: number } | undefined {
    return this.target;
  }

  stop(): void {
    this.held.clear();
    this.target = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private run() {
    if (this.timer) return;
    this.step();
    this.timer = setInterval(() => this.step(), 1000 / this.hz);
  }

  private step() {
    if (this.expo.closed) return this.stop();
    const stride = WALK_SPEED / this.hz;
    const me = this.expo.me;
    let dx = 0, dy = 0;
    for (const code of this.held) { dx += KEYS[code]![0]; dy += KEYS[code]![1]; }
    if (dx === 0 && dy === 0 && this.target) {
      dx = this.target.x - me.x;
      dy = this.target.y - me.y;
    }
    const length = Math.hypot(dx, dy);
    if (length < 1e-6) {
      this.target = undefined;
      if (this.held.size === 0 && this.timer) { clearInterval(this.timer); this.timer = undefined; }
      return;
    }
    const scale = this.held.size === 0 && length <= stride ? 1 : stride / length;
    const { width, height } = this.expo.hall;
    const x = clamp(me.x + dx * scale, 0, width);
    const y = clamp(me.y + dy * scale, 0, height);
    if (x === me.x && y === me.y) { this.target = undefined; return; }
    this.expo.move(round(x), round(y), Math.atan2(dy, dx));
    if (this.target && Math.hypot(this.target.x - x, this.target.y - y) < 1e-3) this.target = undefined;
    this.onStep?.();
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/** Centimetres are plenty, and keep the numbers short on the wire and in the DOM. */
function round(value: number): number {
  return Math.round(value * 100) / 100;
}
