/**
 * Regions: the live nodes of each region (GET /regions: draining, overloaded), their load
 * (GET /console/api/nodes, admin: ccu, rooms, event-loop lag) and the round trips this
 * node measures to every other node (a row of the RTT matrix: each node measures its own;
 * the row of another node is on its own console). This node's own health: GET /healthz.
 * Refreshed every few seconds.
 */
import { usePoll, clock } from "./usePoll.ts";

interface RegionsBody { regions: Array<{ id: string; nodes: Array<{ nodeId: string; url: string; draining: boolean; overloaded: boolean }> }> }
interface NodeRow { nodeId: string; regionId: string; load: { ccu: number; rooms: number; eventLoopLagMs: number; overloaded: boolean }; draining: boolean; rttMs: number | null }
interface NodesBody { regionId: string; nodeId: string; measuredAt: number; nodes: NodeRow[] }
interface Health { status: string; regionId: string; nodeId: string; load?: NodeRow["load"] }

const REFRESH_MS = 3000;

export function RegionsSection(props: { token: string }) {
  const regions = usePoll<RegionsBody>(props.token, "/regions", REFRESH_MS);
  const nodes = usePoll<NodesBody>(props.token, "/console/api/nodes", REFRESH_MS);
  const health = usePoll<Health>(props.token, "/healthz", REFRESH_MS);
  const detail = nodes.answer?.ok ? new Map(nodes.answer.body.nodes.map((n) => [n.nodeId, n])) : undefined;
  const self = health.answer?.ok ? health.answer.body : undefined;
  const loadOf = (nodeId: string) => detail?.get(nodeId)?.load ?? (self?.nodeId === nodeId ? self.load : undefined);

  return (
    <div class="grid console-grid">
      <section class="card wide" aria-labelledby="nodes-title">
        <h2 id="nodes-title">Nodes by region</h2>
        <p class="muted" role="status">
          This page is served by <strong data-testid="self-node">{self ? `${self.nodeId} (${self.regionId})` : "…"}</strong>
          {self && self.status !== "ok" ? ` — ${self.status}` : ""}. Updated {clock(regions.at)}.
        </p>
        {regions.answer && !regions.answer.ok && <p class="error" role="alert">{regions.answer.error}</p>}
        {regions.answer?.ok && (
          <table class="nodes">
            <caption class="sr-only">Live nodes, their state and load</caption>
            <thead><tr><th scope="col">Region</th><th scope="col">Node</th><th scope="col">State</th><th scope="col">Clients</th><th scope="col">Rooms</th><th scope="col">Loop lag</th><th scope="col">Address</th></tr></thead>
            <tbody>
              {regions.answer.body.regions.flatMap((region) => region.nodes.map((node) => {
                const load = loadOf(node.nodeId);
                const state = node.draining ? "draining" : node.overloaded ? "overloaded" : "ok";
                return (
                  <tr data-region={region.id} data-node={node.nodeId}>
                    <th scope="row">{region.id}</th>
                    <td>{node.nodeId}{node.nodeId === self?.nodeId ? " (this node)" : ""}</td>
                    <td><span class={`state ${state}`}>{state}</span></td>
                    <td>{load?.ccu ?? "—"}</td>
                    <td>{load?.rooms ?? "—"}</td>
                    <td>{load ? `${Math.round(load.eventLoopLagMs)} ms` : "—"}</td>
                    <td><a href={`${node.url}/console/regions`}>{node.url}</a></td>
                  </tr>
                );
              }))}
            </tbody>
          </table>
        )}
        {nodes.answer && !nodes.answer.ok && (
          <p class="muted">Load of other nodes: not available ({nodes.answer.error}). It needs the console route <code>GET /console/api/nodes</code> on this node.</p>
        )}
      </section>
      <section class="card" aria-labelledby="rtt-title">
        <h2 id="rtt-title">Round trips</h2>
        {nodes.answer?.ok ? (
          <>
            <table class="rtt">
              <caption>From {nodes.answer.body.nodeId} ({nodes.answer.body.regionId}), measured {clock(nodes.answer.body.measuredAt)}</caption>
              <thead><tr><th scope="col">To node</th><th scope="col">Region</th><th scope="col">Round trip</th></tr></thead>
              <tbody>
                {nodes.answer.body.nodes.map((n) => (
                  <tr><th scope="row">{n.nodeId}</th><td>{n.regionId}</td><td>{n.nodeId === (nodes.answer as { body: NodesBody }).body.nodeId ? "this node" : n.rttMs === null ? "no answer" : `${n.rttMs} ms`}</td></tr>
                ))}
              </tbody>
            </table>
            <p class="muted">Each node measures its own row of the matrix; open the console on another node (its address above) for its row.</p>
          </>
        ) : (
          <p class="muted" data-testid="rtt-missing">
            The RTT matrix is not available from this node{nodes.answer && !nodes.answer.ok ? ` (${nodes.answer.error})` : ""}: the nodes probe each other's
            health but publish no round trips except through the console route <code>GET /console/api/nodes</code>.
          </p>
        )}
      </section>
    </div>
  );
}
