/**
 * Rooms: every room of the cluster, live (the lobby room through the SDK: useLobby), with
 * its type, clients and where it runs; the moves seen while the page is open (a room's
 * region or node changing: a handoff or a failover), as they happen; and a room's
 * handoff history on demand (GET /rooms/:roomId/handoffs, admin).
 */
import { useState } from "preact/hooks";
import { callApi, type ApiAnswer } from "../../app/api.ts";
import { useLobby, shortId, type LobbyState } from "./useLobby.ts";
import { HandoffTable, type HandoffRecordView } from "./HandoffTable.tsx";
import { clock } from "./usePoll.ts";

interface History { roomId: string; regionId: string; nodeId: string; handoffs: HandoffRecordView[] }

export function RoomsTable(props: { lobby: LobbyState; onHistory?: (roomId: string) => void }) {
  const { lobby } = props;
  if (lobby.phase === "joining") return <p class="muted" role="status">Joining the lobby…</p>;
  if (lobby.phase === "error" && lobby.rooms.length === 0) return <p class="error" role="alert">The lobby refused or closed: {lobby.error}</p>;
  return (
    <table class="rooms">
      <caption class="sr-only">Rooms of the cluster</caption>
      <thead><tr><th scope="col">Room</th><th scope="col">Type</th><th scope="col">Clients</th><th scope="col">Region</th><th scope="col">Node</th>{props.onHistory && <th scope="col"><span class="sr-only">Actions</span></th>}</tr></thead>
      <tbody>
        {lobby.rooms.map((room) => (
          <tr data-room-id={room.roomId} data-room-type={room.name}>
            <th scope="row">{shortId(room)}{typeof room.metadata?.hallId === "string" && room.metadata.hallId !== shortId(room) ? <span class="muted"> · hall {room.metadata.hallId}</span> : null}</th>
            <td>{room.name}</td>
            <td>{room.clients}{room.maxClients ? ` / ${room.maxClients}` : ""}</td>
            <td>{room.regionId}</td>
            <td>{room.nodeId}</td>
            {props.onHistory && <td><button type="button" class="small" onClick={() => props.onHistory!(room.roomId)} aria-label={`Handoff history of ${shortId(room)}`}>History</button></td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function MovesList(props: { lobby: LobbyState }) {
  return (
    <div aria-live="polite" class="moves" data-testid="live-moves">
      {props.lobby.moves.length === 0 ? <p class="muted">No room has moved since this page opened.</p> : (
        <ol class="notice-list">
          {props.lobby.moves.map((move) => (
            <li data-room-id={move.roomId}><time>{clock(move.at)}</time> {move.name} <strong>{move.roomId}</strong> moved from {move.from} to {move.to}</li>
          ))}
        </ol>
      )}
    </div>
  );
}

export function RoomsSection(props: { token: string; role: string }) {
  const lobby = useLobby(props.token);
  const [history, setHistory] = useState<{ roomId: string; answer?: ApiAnswer<History> } | undefined>();
  const admin = props.role === "admin";
  const showHistory = async (roomId: string) => {
    setHistory({ roomId });
    setHistory({ roomId, answer: await callApi<History>(props.token, `/rooms/${encodeURIComponent(roomId)}/handoffs`) });
  };
  return (
    <div class="grid console-grid">
      <section class="card wide" aria-labelledby="rooms-title">
        <h2 id="rooms-title">Rooms of the cluster <span class="muted">({lobby.rooms.length}, live)</span></h2>
        <RoomsTable lobby={lobby} onHistory={admin ? showHistory : undefined} />
        {!admin && <p class="muted">Handoff histories need an admin token.</p>}
      </section>
      <section class="card" aria-labelledby="moves-title">
        <h2 id="moves-title">Live handoffs</h2>
        <MovesList lobby={lobby} />
      </section>
      {history && (
        <section class="card wide" aria-labelledby="history-title">
          <h2 id="history-title">Handoff history of {history.roomId}</h2>
          {!history.answer ? <p class="muted" role="status">Asking the room's node…</p>
            : !history.answer.ok ? (
                <>
                  <p class="error" role="alert">{history.answer.error}</p>
                  {(() => {
                    // the history is kept by the room's node and not forwarded: its own console asks it
                    const where = lobby.rooms.find((r) => r.roomId === history.roomId);
                    return where && where.publicAddress !== location.host
                      ? <p><a href={`${location.protocol}//${where.publicAddress}/console/rooms`} data-testid="room-node-console">Open the console on {where.nodeId} ({where.regionId})</a> for its history.</p>
                      : null;
                  })()}
                </>
              )
            : <>
                <p class="muted">From its node {history.answer.body.nodeId} ({history.answer.body.regionId}).</p>
                <HandoffTable records={history.answer.body.handoffs} />
              </>}
        </section>
      )}
    </div>
  );
}
