/**
 * Admin actions (admin token only; the page shows none to other roles, and the server
 * refuses them anyway): hand a room to a region (POST /rooms/:roomId/handoff?to=REGION
 * [&node=NODE], forwarded by the node to the room's node), with a confirmation step and
 * the server's answer (the handoff's record, or its coded refusal); drain a node or a
 * region (POST /nodes/:nodeId/drain, POST /regions/:regionId/drain), confirmed first.
 */
import { useState } from "preact/hooks";
import { callApi, type ApiAnswer } from "../../app/api.ts";
import { useLobby, shortId } from "./useLobby.ts";
import { usePoll } from "./usePoll.ts";
import { HandoffTable, outcomeOf, type HandoffRecordView } from "./HandoffTable.tsx";

interface RegionsBody { regions: Array<{ id: string; nodes: Array<{ nodeId: string }> }> }
interface Request { roomId: string; to: string; node: string }

function HandoffForm(props: { token: string }) {
  const lobby = useLobby(props.token);
  const regions = usePoll<RegionsBody>(props.token, "/regions", 5000);
  const regionIds = regions.answer?.ok ? regions.answer.body.regions.map((r) => r.id) : [];
  const [roomId, setRoomId] = useState("");
  const [to, setTo] = useState("");
  const [node, setNode] = useState("");
  const [pending, setPending] = useState<Request | undefined>();
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<{ request: Request; answer: ApiAnswer<HandoffRecordView> } | undefined>();
  const room = roomId || lobby.rooms[0]?.roomId || "";
  const current = lobby.rooms.find((r) => r.roomId === room);

  const send = async (request: Request) => {
    setBusy(true);
    const query = `to=${encodeURIComponent(request.to)}${request.node ? `&node=${encodeURIComponent(request.node)}` : ""}`;
    const result = await callApi<HandoffRecordView>(props.token, `/rooms/${encodeURIComponent(request.roomId)}/handoff?${query}`, { method: "POST" });
    setBusy(false);
    setPending(undefined);
    setAnswer({ request, answer: result });
  };

  return (
    <section class="card wide" aria-labelledby="handoff-title">
      <h2 id="handoff-title">Hand a room to a region</h2>
      <form onSubmit={(event) => { event.preventDefault(); if (room && to.trim()) { setAnswer(undefined); setPending({ roomId: room, to: to.trim(), node: node.trim() }); } }}>
        <label for="handoff-room">Room</label>
        <select id="handoff-room" value={room} onChange={(event) => setRoomId((event.target as HTMLSelectElement).value)}>
          {lobby.rooms.map((r) => <option value={r.roomId}>{shortId(r)} · {r.name} · {r.regionId}/{r.nodeId}</option>)}
        </select>
        <label for="handoff-to">To region</label>
        <input id="handoff-to" list="handoff-regions" value={to} required pattern="[a-z0-9][a-z0-9-]{0,62}" autoComplete="off"
          onInput={(event) => setTo((event.target as HTMLInputElement).value)} aria-describedby="handoff-to-hint" />
        <datalist id="handoff-regions">{regionIds.map((id) => <option value={id} />)}</datalist>
        <p id="handoff-to-hint" class="muted hint">Live regions: {regionIds.join(", ") || "…"}{current ? ` (the room is in ${current.regionId})` : ""}.</p>
        <label for="handoff-node">Node (optional)</label>
        <input id="handoff-node" value={node} autoComplete="off" onInput={(event) => setNode((event.target as HTMLInputElement).value)} />
        <div class="row buttons"><button type="submit" disabled={!room || busy}>Hand off…</button></div>
      </form>
      {pending && (
        <div class="confirm" role="alertdialog" aria-labelledby="handoff-confirm-text">
          <p id="handoff-confirm-text">Move <strong>{pending.roomId}</strong> to region <strong>{pending.to}</strong>{pending.node ? ` (node ${pending.node})` : ""}? Its clients follow it.</p>
          <div class="row">
            <button type="button" class="danger" disabled={busy} onClick={() => void send(pending)} ref={(el) => el?.focus()}>{busy ? "Handing off…" : "Confirm handoff"}</button>
            <button type="button" disabled={busy} onClick={() => setPending(undefined)}>Cancel</button>
          </div>
        </div>
      )}
      {answer && (
        <div role="status" data-testid="handoff-answer" data-ok={String(answer.answer.ok)} data-status={answer.answer.status} data-code={answer.answer.ok ? "" : String(answer.answer.code ?? "")}>
          {answer.answer.ok
            ? <><p class="ok">Handoff of {answer.request.roomId} to {answer.request.to}: {outcomeOf(answer.answer.body)}.</p><HandoffTable records={[answer.answer.body]} /></>
            : <p class="error">The server refused (HTTP {answer.answer.status}): {answer.answer.error}</p>}
        </div>
      )}
    </section>
  );
}

interface RegionNodes { regions: Array<{ id: string; nodes: Array<{ nodeId: string; draining: boolean }> }> }
type DrainTarget = { kind: "node" | "region"; id: string };
interface DrainBody { nodeId?: string; regionId: string; nodes?: Array<{ nodeId: string; draining: boolean; error?: string }> }

function drainSummary(target: DrainTarget, body: DrainBody): string {
  if (target.kind === "node") return `Node ${target.id} is draining: its rooms that can move go to the nearest node with capacity, then it stops.`;
  const nodes = body.nodes ?? [];
  const failed = nodes.filter((n) => !n.draining);
  return `Region ${target.id}: ${nodes.filter((n) => n.draining).map((n) => n.nodeId).join(", ") || "no node"} draining${failed.length ? `; refused: ${failed.map((n) => `${n.nodeId} (${n.error})`).join("; ")}` : ""}.`;
}

function DrainPanel(props: { token: string }) {
  const regions = usePoll<RegionNodes>(props.token, "/regions", 3000);
  const list = regions.answer?.ok ? regions.answer.body.regions : [];
  const [pending, setPending] = useState<DrainTarget | undefined>();
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<{ target: DrainTarget; answer: ApiAnswer<DrainBody> } | undefined>();
  const liveNodes = list.reduce((sum, region) => sum + region.nodes.filter((n) => !n.draining).length, 0);

  const send = async (target: DrainTarget) => {
    setBusy(true);
    const path = target.kind === "node" ? `/nodes/${encodeURIComponent(target.id)}/drain` : `/regions/${encodeURIComponent(target.id)}/drain`;
    const result = await callApi<DrainBody>(props.token, path, { method: "POST" });
    setBusy(false);
    setPending(undefined);
    setAnswer({ target, answer: result });
  };
  const ask = (target: DrainTarget) => { setAnswer(undefined); setPending(target); };

  return (
    <section class="card wide" aria-labelledby="drain-title" data-testid="drain-panel">
      <h2 id="drain-title">Drain a node or a region</h2>
      <p class="muted">A draining node takes no new seats, hands each room that can move to the nearest node with capacity (its clients follow), tells the clients of the rest to reconnect elsewhere, and stops, as on <code>SIGTERM</code>.</p>
      <table class="drain">
        <thead><tr><th scope="col">Region</th><th scope="col">Nodes</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {list.map((region) => (
            <tr key={region.id} data-region-id={region.id}>
              <th scope="row">{region.id}</th>
              <td>
                <ul class="inline">
                  {region.nodes.map((n) => (
                    <li key={n.nodeId}>
                      {n.draining
                        ? <span class="muted">{n.nodeId} (draining)</span>
                        : <button type="button" disabled={busy} onClick={() => ask({ kind: "node", id: n.nodeId })}>Drain node {n.nodeId}</button>}
                    </li>
                  ))}
                </ul>
              </td>
              <td><button type="button" disabled={busy || region.nodes.every((n) => n.draining)} onClick={() => ask({ kind: "region", id: region.id })}>Drain region {region.id}</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      {pending && (
        <div class="confirm" role="alertdialog" aria-labelledby="drain-confirm-text">
          <p id="drain-confirm-text">
            Drain {pending.kind} <strong>{pending.id}</strong>? {pending.kind === "node" ? "It stops once its rooms have moved." : "Each of its nodes stops once its rooms have moved."}
            {(pending.kind === "node" ? liveNodes <= 1 : list.every((region) => region.id === pending.id || region.nodes.every((n) => n.draining)))
              ? <strong class="error"> Nothing else is left to take its rooms or its clients: the service stops with it.</strong>
              : null}
          </p>
          <div class="row">
            <button type="button" class="danger" disabled={busy} onClick={() => void send(pending)} ref={(el) => el?.focus()}>{busy ? "Draining…" : `Confirm drain of ${pending.id}`}</button>
            <button type="button" disabled={busy} onClick={() => setPending(undefined)}>Cancel</button>
          </div>
        </div>
      )}
      {answer && (
        <div role="status" data-testid="drain-answer" data-ok={String(answer.answer.ok)} data-code={answer.answer.ok ? "" : String(answer.answer.code ?? "")}>
          {answer.answer.ok
            ? <p class="ok">{drainSummary(answer.target, answer.answer.body)}</p>
            : <p class="error">The server refused (HTTP {answer.answer.status}): {answer.answer.error}</p>}
        </div>
      )}
    </section>
  );
}

export function AdminSection(props: { token: string; role: string }) {
  if (props.role !== "admin") {
    return <p class="notice" data-testid="no-admin">Admin actions need an admin token (yours is {props.role}). The server refuses them to any other.</p>;
  }
  return (
    <div class="grid console-grid">
      <HandoffForm token={props.token} />
      <DrainPanel token={props.token} />
    </div>
  );
}
