/**
 * Live telemetry: a gauge per axis (position within the profile's bounds, velocity
 * within ±max_rate), a chart of the first two axes' positions over the last 30 s, the
 * battery, mode, faults and the device's status texts.
 */
import { tsunagi, type DeviceProfile, type Telemetry } from "../../../../client-sdk/index.ts";
import { HISTORY_SECONDS, type Sample } from "./useCockpit.ts";

const Severity = tsunagi.v1.Fault.Severity;
const fixed = (value: number | undefined | null, digits = 2) => (typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "–");

/** A bar from the centre for signed values (velocity), or from the left for bounded ones (position). */
function Bar(props: { value: number; min: number; max: number; signed: boolean; label: string }) {
  const { value, min, max, signed } = props;
  const span = max - min || 1;
  const at = Math.min(1, Math.max(0, (value - min) / span));
  const style = signed
    ? { left: `${Math.min(at, 0.5) * 100}%`, width: `${Math.abs(at - 0.5) * 100}%` }
    : { left: "0%", width: `${at * 100}%` };
  return (
    <div class="bar" role="meter" aria-label={props.label} aria-valuemin={min} aria-valuemax={max} aria-valuenow={Number(value.toFixed(3))}>
      <div class="bar-fill" style={style} />
      {signed && <div class="bar-zero" />}
    </div>
  );
}

function Gauges(props: { profile: DeviceProfile; telemetry?: Telemetry }) {
  return (
    <table class="gauges">
      <thead><tr><th scope="col">Axis</th><th scope="col">Position</th><th scope="col">Velocity</th></tr></thead>
      <tbody>
        {props.profile.axes.map((axis) => {
          const joint = props.telemetry?.joints.find((candidate) => candidate.name === axis.name);
          const position = joint?.position ?? 0;
          const velocity = joint?.velocity ?? 0;
          const bounded = axis.min != null && axis.max != null;
          const rate = axis.maxRate || 1;
          return (
            <tr key={axis.name} data-axis={axis.name}>
              <th scope="row">{axis.name}</th>
              <td>
                <span data-testid={`position-${axis.name}`}>{fixed(joint?.position)}</span> {axis.unit}
                {bounded && <Bar value={position} min={axis.min!} max={axis.max!} signed={false} label={`${axis.name} position`} />}
              </td>
              <td>
                <span data-testid={`velocity-${axis.name}`}>{fixed(joint?.velocity)}</span> {axis.rateUnit}
                <Bar value={velocity} min={-rate} max={rate} signed label={`${axis.name} velocity`} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** Positions over the last HISTORY_SECONDS, each series scaled to its own range. */
function Chart(props: { names: string[]; history: Sample[] }) {
  const { history, names } = props;
  const width = 300, height = 80;
  const end = history.at(-1)?.atMs ?? Date.now();
  const lines = names.map((_, series) => {
    const values = history.map((sample) => sample.values[series] ?? 0);
    const low = Math.min(...values), high = Math.max(...values);
    const span = high - low || 1;
    return history.map((sample, i) => {
      const x = width - ((end - sample.atMs) / (HISTORY_SECONDS * 1000)) * width;
      const y = height - 4 - ((values[i]! - low) / span) * (height - 8);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    }).join(" ");
  });
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${names.join(" and ")} positions over the last ${HISTORY_SECONDS} seconds`}>
        {lines.map((points, i) => <polyline key={names[i]} points={points} class={`series series-${i}`} fill="none" />)}
      </svg>
      <figcaption>
        {names.map((name, i) => <span key={name} class={`legend series-${i}`}>{name}</span>)} · last {HISTORY_SECONDS} s
      </figcaption>
    </figure>
  );
}

export function TelemetryPanel(props: { profile?: DeviceProfile; telemetry?: Telemetry; history: Sample[] }) {
  const { profile, telemetry } = props;
  return (
    <section class="card" aria-labelledby="telemetry-title">
      <h2 id="telemetry-title">Telemetry</h2>
      {!profile ? <p class="muted">Waiting for the device's profile…</p> : (
        <>
          <Gauges profile={profile} telemetry={telemetry} />
          {props.history.length > 1 && <Chart names={profile.axes.slice(0, 2).map((axis) => axis.name ?? "")} history={props.history} />}
        </>
      )}
      <dl class="facts">
        <dt>Mode</dt><dd>{telemetry?.mode || "–"}</dd>
        <dt>Battery</dt><dd>{telemetry?.battery ? `${fixed(telemetry.battery.percent, 0)} % · ${fixed(telemetry.battery.voltage, 1)} V` : "–"}</dd>
        {telemetry?.pose && <><dt>Pose</dt><dd>x {fixed(telemetry.pose.x)} · y {fixed(telemetry.pose.y)} · z {fixed(telemetry.pose.z)} m</dd></>}
        {telemetry?.geo && <><dt>Position</dt><dd>{fixed(telemetry.geo.lat, 6)}, {fixed(telemetry.geo.lon, 6)}</dd></>}
        {telemetry?.watchdogTripped && <><dt>Watchdog</dt><dd class="error">tripped: take the lease again</dd></>}
      </dl>
      <h3>Faults</h3>
      {telemetry?.faults.length ? (
        <ul class="faults">
          {telemetry.faults.map((fault) => (
            <li key={fault.code} class={(fault.severity ?? 0) >= Severity.ERROR ? "error" : undefined}>
              <strong>{fault.code}</strong> ({Severity[fault.severity ?? 0] ?? "?"}): {fault.message}
            </li>
          ))}
        </ul>
      ) : <p class="muted">None.</p>}
      {telemetry?.statusTexts.length ? (
        <>
          <h3>Device messages</h3>
          <ul class="status-texts">{telemetry.statusTexts.map((text) => <li key={`${text.atMs}-${text.text}`}>{text.text}</li>)}</ul>
        </>
      ) : null}
    </section>
  );
}
