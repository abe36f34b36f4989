/**
 * Expo: pick a hall (the halls of the expo rooms the lobby lists, or type one), then its
 * analytics (GET /expo/halls/:hallId/analytics, host or admin), refreshed every few
 * seconds: the heatmap (Heatmap.tsx) and the booths' figures; and the CSV exports
 * (`?format=csv&table=booths|heatmap`), fetched with the token and offered as a download.
 */
import { useState } from "preact/hooks";
import { downloadWithToken } from "../../app/api.ts";
import { useLobby } from "./useLobby.ts";
import { usePoll, clock } from "./usePoll.ts";
import { Heatmap, type HeatmapData } from "./Heatmap.tsx";

interface BoothReport { boothId: string; visits: number; uniqueVisitors: number; dwellTotalMs: number; dwellMeanMs: number; currentVisitors: number }
interface AnalyticsReport { hallId: string; fromMs: number; toMs: number; uniqueVisitors: number; currentVisitors: number; booths: BoothReport[]; heatmap: HeatmapData }

const REFRESH_MS = 3000;
const HALL_ID = /^[A-Za-z0-9_-]{1,64}$/;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function ExpoSection(props: { token: string; role: string }) {
  const lobby = useLobby(props.token);
  const halls = [...new Set(lobby.rooms.filter((r) => r.name === "expo").map((r) => String(r.metadata?.hallId ?? "")).filter(Boolean))].sort();
  const initial = new URLSearchParams(location.search).get("hall") ?? "";
  const [picked, setPicked] = useState(initial);
  const [typed, setTyped] = useState(initial);
  const hallId = picked || halls[0] || "";
  const analytics = usePoll<AnalyticsReport>(props.token, HALL_ID.test(hallId) ? `/expo/halls/${hallId}/analytics` : undefined, REFRESH_MS);
  const [exported, setExported] = useState<string | undefined>();
  const exportCsv = async (table: "booths" | "heatmap") => {
    setExported(`Exporting ${table}…`);
    const result = await downloadWithToken(props.token, `/expo/halls/${hallId}/analytics?format=csv&table=${table}`, `${hallId}-${table}.csv`);
    setExported(result.ok ? `Exported ${hallId}-${table}.csv (${result.bytes} bytes).` : `Export refused: ${result.error}`);
  };
  const report = analytics.answer?.ok ? analytics.answer.body : undefined;

  return (
    <div class="grid console-grid">
      <section class="card wide" aria-labelledby="hall-title">
        <h2 id="hall-title">Hall</h2>
        <form class="row" onSubmit={(event) => { event.preventDefault(); if (HALL_ID.test(typed.trim())) setPicked(typed.trim()); }}>
          <label for="hall-pick">Open halls</label>
          <select id="hall-pick" value={hallId} onChange={(event) => { const value = (event.target as HTMLSelectElement).value; setPicked(value); setTyped(value); }}>
            {halls.length === 0 && <option value="">{lobby.phase === "joining" ? "loading…" : "none open"}</option>}
            {halls.map((id) => <option value={id}>{id}</option>)}
            {hallId && !halls.includes(hallId) && <option value={hallId}>{hallId} (closed)</option>}
          </select>
          <label for="hall-typed">or a hall id</label>
          <input id="hall-typed" value={typed} pattern="[A-Za-z0-9_-]{1,64}" onInput={(event) => setTyped((event.target as HTMLInputElement).value)} />
          <button type="submit">Show</button>
        </form>
        {analytics.answer && !analytics.answer.ok && <p class="error" role="alert">Analytics refused: {analytics.answer.error}</p>}
        {report && (
          <p role="status" class="muted" data-testid="expo-summary">
            {report.currentVisitors} visitors now, {report.uniqueVisitors} in all since {clock(report.fromMs)}. Updated {clock(analytics.at)} (every {REFRESH_MS / 1000} s).
          </p>
        )}
      </section>
      {report && (
        <section class="card" aria-labelledby="heat-title">
          <h2 id="heat-title">Heatmap</h2>
          <Heatmap data={report.heatmap} hallId={report.hallId} />
        </section>
      )}
      {report && (
        <section class="card" aria-labelledby="booths-title">
          <h2 id="booths-title">Booths</h2>
          <table class="booths">
            <caption class="sr-only">Booth analytics of hall {report.hallId}</caption>
            <thead><tr><th scope="col">Booth</th><th scope="col">Now</th><th scope="col">Visits</th><th scope="col">Unique</th><th scope="col">Mean dwell</th><th scope="col">Total dwell</th></tr></thead>
            <tbody>
              {report.booths.map((booth) => (
                <tr data-booth-id={booth.boothId}>
                  <th scope="row">{booth.boothId}</th><td>{booth.currentVisitors}</td><td>{booth.visits}</td><td>{booth.uniqueVisitors}</td>
                  <td>{seconds(booth.dwellMeanMs)}</td><td>{seconds(booth.dwellTotalMs)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="row buttons">
            <button type="button" onClick={() => void exportCsv("booths")}>Export booths (CSV)</button>
            <button type="button" onClick={() => void exportCsv("heatmap")}>Export heatmap (CSV)</button>
          </div>
          {exported && <p role="status" class="muted">{exported}</p>}
        </section>
      )}
    </div>
  );
}
