/**
 * A teleop room's audit trail and whether its hash chain verifies, from the console
 * route GET /console/api/audit/:roomId (admin; answered by the room's node). Refreshed
 * every few seconds.
 */
import { usePoll, clock } from "./usePoll.ts";

interface AuditEntryView { seq: number; type: string; at: number; hash: string; data: Record<string, unknown> }
interface AuditBody {
  roomId: string; nodeId: string; total: number; entries: AuditEntryView[];
  verify: { ok: true; entries: number; headSeq: number; headHash: string } | { ok: false; entries: number; brokenAt: number; reason: string };
}

const REFRESH_MS = 4000;

function summary(data: Record<string, unknown>): string {
  return Object.entries(data).slice(0, 6).map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : String(value)}`).join(" ").slice(0, 160);
}

export function AuditPanel(props: { token: string; roomId: string }) {
  const audit = usePoll<AuditBody>(props.token, `/console/api/audit/${encodeURIComponent(props.roomId)}?limit=30`, REFRESH_MS);
  if (!audit.answer) return <p class="muted" role="status">Reading the audit…</p>;
  if (!audit.answer.ok) {
    return (
      <p class="muted" data-testid="audit-missing">
        The audit trail is not available here: {audit.answer.error}. It needs an admin token and the console route <code>GET /console/api/audit/:roomId</code> on the room's node.
      </p>
    );
  }
  const body = audit.answer.body;
  return (
    <>
      <p role="status" data-testid="audit-verify" data-ok={String(body.verify.ok)} class={body.verify.ok ? "ok" : "error"}>
        {body.verify.ok
          ? `Chain verified: ${body.verify.entries} entries, head #${body.verify.headSeq} (${body.verify.headHash.slice(0, 12)}…).`
          : `Chain BROKEN at entry #${body.verify.brokenAt}: ${body.verify.reason}.`}
        {" "}Checked {clock(audit.at)} on {body.nodeId}.
      </p>
      <div class="scroll">
        <table class="audit">
          <caption class="sr-only">Newest audit entries of {body.roomId}</caption>
          <thead><tr><th scope="col">#</th><th scope="col">When</th><th scope="col">Type</th><th scope="col">Details</th></tr></thead>
          <tbody>
            {body.entries.map((entry) => (
              <tr><th scope="row">{entry.seq}</th><td>{clock(entry.at)}</td><td>{entry.type}</td><td class="details">{summary(entry.data)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <p class="muted">{body.entries.length} newest of {body.total}.</p>
    </>
  );
}
