/**
 * The device's discrete manoeuvres (its profile's actions: a drone's arm, take-off,
 * land, hold), each a button, with its value where it takes one. They need the lease.
 */
import { useState } from "preact/hooks";
import { tsunagi, type DeviceProfile, type OperatorControls } from "../../../../client-sdk/index.ts";

const Status = tsunagi.v1.CommandAck.Status;

export function ActionsPanel(props: { profile?: DeviceProfile; controls?: OperatorControls; holding: boolean }) {
  const actions = props.profile?.actions ?? [];
  const [values, setValues] = useState<Record<string, string>>({});
  const [result, setResult] = useState("");
  if (!actions.length) return null;

  const perform = (name: string, value: number) => {
    if (!props.controls) return;
    setResult(`${name}…`);
    props.controls.perform(name, value).then(
      (answer) => setResult(answer.status === Status.APPLIED ? `${name}: accepted` : `${name}: ${Status[answer.status] ?? "refused"}${answer.detail ? ` (${answer.detail})` : ""}`),
      (error: unknown) => setResult(`${name} refused: ${(error as Error)?.message ?? String(error)}`),
    );
  };

  return (
    <section class="card" aria-labelledby="actions-title">
      <h2 id="actions-title">Manoeuvres</h2>
      {!props.holding && <p class="muted">Take the lease to use them.</p>}
      <ul class="actions">
        {actions.map((action) => {
          const id = `action-${action.name}`;
          const text = values[action.name ?? ""] ?? String(action.min ?? 0);
          return (
            <li key={action.name}>
              {action.hasValue && (
                <>
                  <label for={id}>{action.name} ({action.unit}, {action.min}–{action.max})</label>
                  <input id={id} type="number" min={action.min ?? undefined} max={action.max ?? undefined} step="any" value={text}
                    onInput={(event) => setValues({ ...values, [action.name ?? ""]: (event.target as HTMLInputElement).value })} />
                </>
              )}
              <button type="button" disabled={!props.holding} title={action.description ?? undefined}
                onClick={() => perform(action.name ?? "", action.hasValue ? Number(text) : 0)}>{action.name}</button>
              {action.description && <span class="muted"> {action.description}</span>}
            </li>
          );
        })}
      </ul>
      {result && <p role="status" data-testid="action-result">{result}</p>}
    </section>
  );
}
