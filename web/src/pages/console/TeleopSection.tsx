/**
 * Teleop: the teleop rooms the lobby lists; for the one picked, its devices and their
 * lease holders (joining the room: useTeleopWatch), an e-stop per device and for all (the
 * room decides by role), and its audit trail with its verify status (AuditPanel, admin).
 *
 * The teleop room admits operators, supervisors, hosts and visitors, not admins: an
 * admin console shows the audit and says how to watch the devices (as a supervisor); a
 * supervisor or operator console shows the devices and no audit (admin only).
 */
import { useState } from "preact/hooks";
import { useLobby, shortId } from "./useLobby.ts";
import { useTeleopWatch } from "./useTeleopWatch.ts";
import { AuditPanel } from "./AuditPanel.tsx";

const WATCH_ROLES = ["operator", "supervisor"];
const RESET_ROLES = ["supervisor"];

export function TeleopSection(props: { token: string; role: string }) {
  const lobby = useLobby(props.token);
  const rooms = lobby.rooms.filter((room) => room.name === "teleop");
  const [picked, setPicked] = useState<string | undefined>();
  const room = rooms.find((r) => r.roomId === picked) ?? rooms[0];
  const canWatch = WATCH_ROLES.includes(props.role);
  const watch = useTeleopWatch(room ? shortId(room) : undefined, props.token, canWatch);
  const [said, setSaid] = useState<string | undefined>();

  return (
    <div class="grid console-grid">
      <section class="card wide" aria-labelledby="teleop-rooms-title">
        <h2 id="teleop-rooms-title">Teleop rooms</h2>
        {lobby.phase === "joining" ? <p class="muted" role="status">Joining the lobby…</p> : rooms.length === 0 ? <p class="muted">No teleop room is open.</p> : (
          <div class="row">
            <label for="teleop-pick">Room</label>
            <select id="teleop-pick" value={room?.roomId} onChange={(event) => setPicked((event.target as HTMLSelectElement).value)}>
              {rooms.map((r) => <option value={r.roomId}>{shortId(r)} ({r.regionId}/{r.nodeId}, {r.clients} clients)</option>)}
            </select>
          </div>
        )}
      </section>
      {room && (
        <section class="card wide" aria-labelledby="devices-title">
          <h2 id="devices-title">Devices of {shortId(room)}</h2>
          {!canWatch ? (
            <p class="muted" data-testid="devices-need-role">
              The teleop room admits operator and supervisor tokens for this (yours is {props.role}).
              {" "}In dev mode: <a href={`/console/teleop?as=supervisor`}>open this section as a supervisor</a>.
            </p>
          ) : watch.phase === "error" ? <p class="error" role="alert">{watch.error}</p>
            : watch.phase !== "joined" ? <p class="muted" role="status">Joining {shortId(room)}…</p> : (
            <>
              <table class="devices">
                <caption class="sr-only">Devices, lease holders and e-stops</caption>
                <thead><tr><th scope="col">Device</th><th scope="col">Online</th><th scope="col">Lease holder</th><th scope="col">E-stop</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
                <tbody>
                  {watch.devices.map((device) => (
                    <tr data-device-id={device.deviceId}>
                      <th scope="row">{device.deviceId}{device.profile?.model ? <span class="muted"> · {device.profile.vendor} {device.profile.model}</span> : null}</th>
                      <td>{device.lease?.online === false ? "offline" : "online"}</td>
                      <td>{device.lease?.holderSessionId ? `${device.lease.holderRole} (${device.lease.holderSessionId}${device.lease.holderSessionId === watch.sessionId ? ", you" : ""})` : "free"}</td>
                      <td>{device.lease?.estopped ? <strong class="error">latched</strong> : "clear"}</td>
                      <td><div class="row">
                        <button type="button" class="danger" onClick={async () => setSaid(await watch.estop(device.deviceId))}>E-stop {device.deviceId}</button>
                        {device.lease?.estopped && RESET_ROLES.includes(props.role) && <button type="button" onClick={async () => setSaid(await watch.reset(device.deviceId))}>Reset {device.deviceId}</button>}
                      </div></td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div class="row buttons">
                <button type="button" class="danger" onClick={async () => setSaid(await watch.estop())}>E-stop all devices</button>
              </div>
              {said && <p role="status" class="notice">{said}</p>}
            </>
          )}
        </section>
      )}
      {room && (
        <section class="card wide" aria-labelledby="audit-title">
          <h2 id="audit-title">Audit trail</h2>
          {props.role === "admin" ? <AuditPanel token={props.token} roomId={room.roomId} />
            : <p class="muted">The audit trail needs an admin token.</p>}
        </section>
      )}
    </div>
  );
}
