/** The plan's text alternative: the booths near, the areas you are in, and the visitors in view (nearest first). */
import type { ExpoSession } from "../../../../client-sdk/ExpoSession.ts";
import { placeName } from "./describe.ts";

export function NearbyList(props: { expo: ExpoSession; boothsNear: string[]; areas: string[]; presenting: ReadonlySet<string>; neighboursVersion: number; onMessage: (visitorId: number) => void }) {
  const { expo } = props;
  const me = expo.me;
  const visitors = [...expo.neighbours.values()]
    .map((n) => ({ n, distance: Math.hypot(n.x - me.x, n.y - me.y) }))
    .sort((a, b) => a.distance - b.distance);
  return (
    <section class="card near" id="expo-near" aria-labelledby="expo-near-title">
      <h2 id="expo-near-title">Near you</h2>
      <p class="muted">You are at {me.x.toFixed(0)} m east, {me.y.toFixed(0)} m north{props.areas.length ? `, in ${props.areas.map((id) => placeName(expo.hall, id)).join(", ")}` : ""}.</p>
      <h3>Booths</h3>
      {props.boothsNear.length === 0 ? <p class="muted">No booth near.</p> : (
        <ul>
          {props.boothsNear.map((id) => <li key={id}>{placeName(expo.hall, id)}{props.presenting.has(id) ? " (live now)" : ""}</li>)}
        </ul>
      )}
      <h3>Visitors in view ({visitors.length})</h3>
      {visitors.length === 0 ? <p class="muted">Nobody in view.</p> : (
        <ul class="visitors">
          {visitors.map(({ n, distance }) => (
            <li key={n.visitorId} data-visitor-id={n.visitorId}>
              <span>{n.name || `visitor ${n.visitorId}`}{n.role === "host" ? " (host)" : ""}, {distance.toFixed(0)} m</span>
              <button type="button" class="small" onClick={() => props.onMessage(n.visitorId)} aria-label={`Message ${n.name || `visitor ${n.visitorId}`}`}>Message</button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
