/**
 * The hall's plan: an SVG in hall metres (y grows north, so the SVG is flipped), with
 * zones faintly, areas (the stage among them), booths, you, and the visitors in view.
 *
 * Avatars glide between the positions the room sends: each frame of requestAnimationFrame
 * moves every avatar from where it was drawn toward its newest position, over about the
 * time between its samples, writing the SVG attributes directly (no re-render per frame).
 * Each avatar carries `data-visitor-id`, `data-x` and `data-y` (hall metres, as drawn).
 *
 * The plan takes focus (Tab) and walks with arrows / WASD; a click or tap walks to the spot.
 */
import { useEffect, useMemo, useRef } from "preact/hooks";
import type { ExpoSession } from "../../../../client-sdk/ExpoSession.ts";
import type { tsunagi } from "../../../../proto/index.ts";
import { Walker } from "./walking.ts";

interface Glide { fx: number; fy: number; tx: number; ty: number; t0: number; ms: number; x: number; y: number }

const MIN_GLIDE_MS = 50;
const MAX_GLIDE_MS = 400;

export function HallPlan(props: { expo: ExpoSession; neighboursVersion: number; presenting: ReadonlySet<string>; boothsNear: ReadonlySet<string> }) {
  const { expo } = props;
  const hall = expo.hall;
  const { width, height } = hall;
  const svgRef = useRef<SVGSVGElement>(null);
  const targetRef = useRef<SVGCircleElement>(null);
  const walker = useMemo(() => new Walker(expo), [expo]);
  useEffect(() => () => walker.stop(), [walker]);

  // Glides: every avatar (and you) drawn between samples.
  useEffect(() => {
    const glides = new Map<string, Glide>();
    let frame = 0;
    const draw = (now: number) => {
      const svg = svgRef.current;
      if (svg) {
        for (const element of svg.querySelectorAll<SVGGElement>("g[data-visitor-id]")) {
          const key = element.dataset.visitorId!;
          const source = key === "self" ? expo.me : expo.neighbours.get(Number(key));
          if (!source) continue;
          let glide = glides.get(key);
          if (!glide) {
            glide = { fx: source.x, fy: source.y, tx: source.x, ty: source.y, t0: now, ms: MIN_GLIDE_MS, x: source.x, y: source.y };
            glides.set(key, glide);
          } else if (glide.tx !== source.x || glide.ty !== source.y) {
            const ms = Math.min(MAX_GLIDE_MS, Math.max(MIN_GLIDE_MS, now - glide.t0));
            Object.assign(glide, { fx: glide.x, fy: glide.y, tx: source.x, ty: source.y, t0: now, ms });
          }
          const t = Math.min(1, (now - glide.t0) / glide.ms);
          glide.x = glide.fx + (glide.tx - glide.fx) * t;
          glide.y = glide.fy + (glide.ty - glide.fy) * t;
          element.setAttribute("transform", `translate(${glide.x.toFixed(2)} ${(height - glide.y).toFixed(2)})`);
          element.dataset.x = glide.x.toFixed(2);
          element.dataset.y = glide.y.toFixed(2);
        }
        for (const key of [...glides.keys()]) if (key !== "self" && !expo.neighbours.has(Number(key))) glides.delete(key);
        const target = targetRef.current, destination = walker.destination;
        if (target) {
          target.setAttribute("visibility", destination ? "visible" : "hidden");
          if (destination) { target.setAttribute("cx", String(destination.x)); target.setAttribute("cy", String(height - destination.y)); }
        }
      }
      frame = requestAnimationFrame(draw);
    };
    frame = requestAnimationFrame(draw);
    return () => cancelAnimationFrame(frame);
  }, [expo, walker, height]);

  const onPointer = (event: MouseEvent) => {
    const svg = svgRef.current;
    const matrix = svg?.getScreenCTM();
    if (!svg || !matrix) return;
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    walker.walkTo(point.x, height - point.y);
  };

  const neighbours = [...expo.neighbours.values()];
  const unit = Math.max(width, height) / 120; // sizes that read at any hall size
  return (
    <div
      class="plan" tabIndex={0} role="application"
      aria-label={`Plan of ${hall.name || hall.hallId}. Arrow keys or W A S D walk; click a spot to walk there. What is near is listed below the plan.`}
      aria-describedby="expo-near"
      onKeyDown={(event) => { if (!event.altKey && !event.ctrlKey && !event.metaKey && walker.keyDown(event.code)) event.preventDefault(); }}
      onKeyUp={(event) => walker.keyUp(event.code)}
      onBlur={() => walker.releaseKeys()}
    >
      <svg ref={svgRef} viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="xMidYMid meet" onClick={onPointer} aria-hidden="true" data-width={width} data-height={height}>
        <rect class="floor" x={0} y={0} width={width} height={height} />
        {hall.zones?.map((zone) => zone.rect && (
          <rect key={zone.zoneId} class="zone" {...box(zone.rect, height)} />
        ))}
        {hall.areas?.map((area) => area.rect && (
          <g key={area.areaId} class={`area${/stage/i.test(`${area.areaId} ${area.name}`) ? " stage" : ""}`}>
            <rect {...box(area.rect, height)} />
            <text x={(area.rect.x ?? 0) + 1 * unit} y={height - (area.rect.y ?? 0) - (area.rect.h ?? 0) + 3 * unit} font-size={2.4 * unit}>{area.name || area.areaId}</text>
          </g>
        ))}
        {hall.booths?.map((booth) => booth.area && (
          <g key={booth.boothId} class={`booth${props.boothsNear.has(booth.boothId!) ? " near" : ""}${props.presenting.has(booth.boothId!) ? " live" : ""}`} data-booth-id={booth.boothId}>
            <rect {...box(booth.area, height)} rx={0.6 * unit} />
            <text x={(booth.area.x ?? 0) + (booth.area.w ?? 0) / 2} y={height - (booth.area.y ?? 0) - (booth.area.h ?? 0) / 2} font-size={2.2 * unit} text-anchor="middle">{booth.name || booth.boothId}</text>
            {props.presenting.has(booth.boothId!) && <text class="live-tag" x={(booth.area.x ?? 0) + (booth.area.w ?? 0) / 2} y={height - (booth.area.y ?? 0) - (booth.area.h ?? 0) / 2 + 3 * unit} font-size={2 * unit} text-anchor="middle">● LIVE</text>}
          </g>
        ))}
        <circle ref={targetRef} class="walk-target" r={0.8 * unit} visibility="hidden" />
        {neighbours.map((n) => (
          <g key={n.visitorId} class={`avatar${n.role === "host" ? " host" : ""}`} data-visitor-id={String(n.visitorId)} data-name={n.name}>
            <title>{n.name}{n.role === "host" ? " (host)" : ""}</title>
            <circle r={1.1 * unit} />
            <text class="name" y={-1.8 * unit} font-size={2 * unit} text-anchor="middle">{n.name}</text>
          </g>
        ))}
        <g class="avatar self" data-visitor-id="self" data-id={String(expo.visitorId)}>
          <title>You</title>
          <circle r={1.5 * unit} />
          <text class="name" y={-2.2 * unit} font-size={2.2 * unit} text-anchor="middle">You</text>
        </g>
      </svg>
    </div>
  );
}

/** A hall rectangle (south-west corner, metres) as SVG attributes (top-left corner, y down). */
function box(rect: tsunagi.v1.IExpoRect, hallHeight: number): { x: number; y: number; width: number; height: number } {
  const h = rect.h ?? 0;
  return { x: rect.x ?? 0, y: hallHeight - (rect.y ?? 0) - h, width: rect.w ?? 0, height: h };
}
