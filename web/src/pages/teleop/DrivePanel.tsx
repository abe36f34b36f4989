/**
 * How to drive this device (the key pairs derived from its profile, the dead-man key,
 * the gamepad's buttons), what the hands command now, and the latency against the
 * device's budget.
 */
import type { DeviceProfile, LatencyStats } from "../../../../client-sdk/index.ts";
import { KEY_SPEED, keyLabel, keyTable, padPlan } from "./driveInput.ts";
import type { Driving } from "./useDriving.ts";

const ms = (value: number | undefined) => (value === undefined ? "–" : `${value.toFixed(1)} ms`);

export function DrivePanel(props: { profile?: DeviceProfile; driving: Driving; holding: boolean; axes: Record<string, number> }) {
  const { profile, driving } = props;
  const table = keyTable(profile);
  const plan = profile ? padPlan(profile) : undefined;
  const moving = Object.values(props.axes).some((value) => value !== 0);
  return (
    <section class="card" aria-labelledby="drive-title">
      <h2 id="drive-title">Driving</h2>
      <p>
        Hold <kbd>Shift</kbd> (the dead-man key) <strong>and</strong> a direction key. Let go of <kbd>Shift</kbd> and the machine stops:
        no key held, no motion. Each key commands {KEY_SPEED * 100} % of the axis's limit. <kbd>Space</kbd> is the e-stop.
      </p>
      <p role="status" data-testid="drive-state" class={driving.deadman ? "live" : "muted"}>
        {!props.holding ? "Not driving: take the lease first." : driving.deadman || driving.pad?.deadman ? (moving ? "Driving" : "Dead-man held: ready") : "Dead-man released: neutral"}
      </p>
      <table class="keys">
        <caption class="muted">Keys for {profile?.deviceId ?? "the device"}</caption>
        <thead><tr><th scope="col">Axis</th><th scope="col">+</th><th scope="col">−</th><th scope="col">Speed</th></tr></thead>
        <tbody>
          {table.map((binding) => (
            <tr key={binding.axis}>
              <th scope="row">{binding.axis}</th>
              <td><kbd class={driving.held.has(binding.plus) ? "down" : undefined}>{keyLabel(binding.plus)}</kbd></td>
              <td><kbd class={driving.held.has(binding.minus) ? "down" : undefined}>{keyLabel(binding.minus)}</kbd></td>
              <td>{binding.magnitude.toFixed(2)} {binding.unit}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {plan && (
        <p class="muted">
          Gamepad: {driving.pad ? `“${driving.pad.id}” connected` : "none connected"}. Hold the <strong>{plan.deadmanName}</strong> button as the dead-man;
          the <strong>{plan.estopName}</strong> button is the e-stop. Sticks and triggers follow the SDK's mapping for this device.
        </p>
      )}
    </section>
  );
}

export function LatencyPanel(props: { profile?: DeviceProfile; latency?: LatencyStats; demoted?: string; holding: boolean }) {
  const budget = props.profile?.latencyBudgetMs || undefined;
  const latency = props.latency;
  const measured = latency?.ackRttP50Ms;
  const over = budget !== undefined && measured !== undefined && measured > budget;
  return (
    <section class="card" aria-labelledby="latency-title">
      <h2 id="latency-title">Latency</h2>
      <p data-testid="latency-state" class={over ? "error" : measured !== undefined ? "ok" : "muted"}>
        {measured === undefined ? "No commands acknowledged yet." : over ? `Over budget: ${ms(measured)} > ${budget} ms` : `Within budget${budget ? ` (${budget} ms)` : ""}`}
      </p>
      {budget !== undefined && measured !== undefined && (
        <div class="bar" role="meter" aria-label="round trip against the budget" aria-valuemin={0} aria-valuemax={budget * 2} aria-valuenow={Math.round(measured)}>
          <div class={`bar-fill${over ? " over" : ""}`} style={{ left: "0%", width: `${Math.min(100, (measured / (budget * 2)) * 100)}%` }} />
          <div class="bar-zero" title="budget" />
        </div>
      )}
      <dl class="facts">
        <dt>Budget</dt><dd>{budget ? `${budget} ms` : "the server's default for this class"}</dd>
        <dt>Round trip p50 / p99</dt><dd>{ms(latency?.ackRttP50Ms)} / {ms(latency?.ackRttP99Ms)}</dd>
        <dt>Room ↔ device p50</dt><dd>{ms(latency?.deviceRoundTripP50Ms)}</dd>
        <dt>One way p50</dt><dd>{ms(latency?.oneWayP50Ms)}</dd>
        <dt>Last ack</dt><dd>{latency?.lastAckStatus ?? "–"}</dd>
      </dl>
      {props.demoted && <p class="error" role="alert">{props.demoted} Wait for the demotion to pass, then take the lease again.</p>}
    </section>
  );
}
