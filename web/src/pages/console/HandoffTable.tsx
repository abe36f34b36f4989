/** A room's handoff records (server/handoff/types.ts HandoffRecord, as the routes answer them) as a table. */
import { clock } from "./usePoll.ts";

export interface HandoffRecordView {
  id: string;
  roomId: string;
  reason: string;
  from: { regionId: string; nodeId: string };
  to: { regionId: string; nodeId: string };
  transitions: Array<{ state: string | number; at: number; ms: number }>;
  outcome?: string | number;
  error?: string;
  sessions: number;
}

/** The record's outcome in words (the states are numbers or names depending on the build). */
export function outcomeOf(record: HandoffRecordView): string {
  if (record.error) return "aborted";
  const last = record.transitions.at(-1);
  return record.outcome !== undefined ? String(record.outcome) : last ? String(last.state) : "under way";
}

export function HandoffTable(props: { records: HandoffRecordView[] }) {
  if (props.records.length === 0) return <p class="muted">No handoff yet.</p>;
  return (
    <table class="handoffs">
      <caption class="sr-only">Handoffs, newest first</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Reason</th><th scope="col">From</th><th scope="col">To</th><th scope="col">Sessions</th><th scope="col">Took</th><th scope="col">Outcome</th></tr></thead>
      <tbody>
        {[...props.records].reverse().map((record) => (
          <tr data-handoff-id={record.id}>
            <th scope="row">{clock(record.transitions[0]?.at)}</th>
            <td>{record.reason}</td>
            <td>{record.from.regionId}/{record.from.nodeId}</td>
            <td>{record.to.regionId}/{record.to.nodeId}</td>
            <td>{record.sessions}</td>
            <td>{Math.round(record.transitions.at(-1)?.ms ?? 0)} ms</td>
            <td>{outcomeOf(record)}{record.error ? `: ${record.error}` : ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
