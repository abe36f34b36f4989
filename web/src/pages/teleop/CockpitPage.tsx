/**
 * `/teleop/:roomId`: the operator's cockpit. Signs in (TokenGate; opened as "operator"
 * unless `?as=supervisor` etc.), joins the teleop room, offers its devices (`?device=ID`
 * picks one; otherwise the first the room names) and shows the cockpit for the chosen
 * one (Cockpit.tsx). Visitors and hosts watch: no lease, driving or e-stop.
 */
import { useEffect, useState } from "preact/hooks";
import { Shell } from "../../app/Shell.tsx";
import { TokenGate, type Identity } from "../../app/TokenGate.tsx";
import { requestedRole } from "../../app/token.ts";
import { useTeleopRoom } from "./useTeleopRoom.ts";
import { Cockpit } from "./Cockpit.tsx";

export function CockpitPage(props: { roomId: string }) {
  return (
    <TokenGate role={requestedRole("operator")}>
      {(identity) => <CockpitRoom roomId={props.roomId} identity={identity} />}
    </TokenGate>
  );
}

function DevicePicker(props: { devices: string[]; chosen?: string; choose: (deviceId: string) => void }) {
  return (
    <nav class="device-picker" aria-label="Devices">
      {props.devices.map((deviceId) => (
        <button key={deviceId} type="button" aria-pressed={deviceId === props.chosen} onClick={() => props.choose(deviceId)}>{deviceId}</button>
      ))}
    </nav>
  );
}

function CockpitRoom(props: { roomId: string; identity: Identity }) {
  const { roomId, identity } = props;
  const room = useTeleopRoom(roomId, identity.token);
  const [chosen, setChosen] = useState<string | undefined>(() => new URLSearchParams(location.search).get("device") ?? undefined);
  const devices = room.phase === "joined" ? room.devices : [];
  useEffect(() => {
    if (devices.length && (!chosen || !devices.includes(chosen))) setChosen(devices[0]);
  }, [devices.join(",")]);

  const title = `Cockpit · ${roomId}${chosen ? ` · ${chosen}` : ""}`;
  const nav = devices.length > 1 ? <DevicePicker devices={devices} chosen={chosen} choose={setChosen} /> : undefined;
  return (
    <Shell title={title} who={identity} nav={nav}>
      {room.phase === "joining" && <p class="muted" role="status">Joining room {roomId}…</p>}
      {room.phase === "error" && (
        <div class="card" role="alert" data-testid="room-error">
          <h2>{room.title}</h2>
          <p>{room.detail}</p>
        </div>
      )}
      {room.phase === "joined" && !chosen && <p class="muted" role="status">Waiting for the room to name its devices…</p>}
      {room.phase === "joined" && chosen && devices.includes(chosen) && (
        <Cockpit key={chosen} session={room.session} deviceId={chosen} role={identity.role} />
      )}
    </Shell>
  );
}
