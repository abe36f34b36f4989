/**
 * The hall's heatmap (AnalyticsReport.heatmap: visitor-seconds per cell, row-major, row 0
 * the south edge) drawn as SVG, north up, with its text alternative: the total and the
 * hottest cells listed.
 */
export interface HeatmapData { cellSize: number; cols: number; rows: number; visitorSeconds: number[] }

const HOTTEST = 5;

/** Dark blue → amber → white, readable on the dark panel. */
function colour(share: number): string {
  if (share <= 0) return "#101a24";
  const hue = 210 - 170 * share;
  const light = 22 + 50 * share;
  return `hsl(${hue.toFixed(0)} 85% ${light.toFixed(0)}%)`;
}

export function hottestCells(data: HeatmapData, count = HOTTEST) {
  return data.visitorSeconds
    .map((seconds, index) => ({ seconds, col: index % data.cols, row: Math.floor(index / data.cols) }))
    .filter((cell) => cell.seconds > 0)
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, count);
}

export function Heatmap(props: { data: HeatmapData; hallId: string }) {
  const { data } = props;
  const max = Math.max(0, ...data.visitorSeconds);
  const total = data.visitorSeconds.reduce((sum, s) => sum + s, 0);
  const hottest = hottestCells(data);
  const where = (cell: { col: number; row: number }) => `${cell.col * data.cellSize}–${(cell.col + 1) * data.cellSize} m east, ${cell.row * data.cellSize}–${(cell.row + 1) * data.cellSize} m north`;
  return (
    <figure class="heatmap" data-total={Math.round(total)} data-testid="heatmap">
      <svg viewBox={`0 0 ${data.cols} ${data.rows}`} role="img" aria-labelledby="heatmap-caption" preserveAspectRatio="xMidYMid meet">
        {data.visitorSeconds.map((seconds, index) => {
          const col = index % data.cols;
          const row = Math.floor(index / data.cols);
          return <rect x={col} y={data.rows - 1 - row} width={1} height={1} fill={colour(max ? seconds / max : 0)} data-seconds={seconds} />;
        })}
      </svg>
      <figcaption id="heatmap-caption">
        Heatmap of hall {props.hallId}: <strong data-testid="heatmap-total">{Math.round(total)}</strong> visitor-seconds in all,
        {" "}{data.cols} × {data.rows} cells of {data.cellSize} m, north up.
      </figcaption>
      <h3>Hottest cells</h3>
      {hottest.length === 0 ? <p class="muted">Nobody has been in the hall yet.</p> : (
        <ol class="hottest">
          {hottest.map((cell) => <li>{where(cell)}: {Math.round(cell.seconds)} visitor-seconds</li>)}
        </ol>
      )}
    </figure>
  );
}
