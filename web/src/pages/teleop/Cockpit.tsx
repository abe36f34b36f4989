/**
 * The cockpit for one device: the lease, driving, telemetry, latency and camera panels,
 * and the e-stop fixed on screen for the roles that may raise one.
 */
import type { RoomSession } from "../../../../client-sdk/index.ts";
import { useCockpit } from "./useCockpit.ts";
import { useDriving } from "./useDriving.ts";
import { DRIVER_ROLES, EStopBar, LeasePanel, latched } from "./LeasePanel.tsx";
import { TelemetryPanel } from "./TelemetryPanel.tsx";
import { DrivePanel, LatencyPanel } from "./DrivePanel.tsx";
import { CameraPanel } from "./CameraPanel.tsx";
import { ActionsPanel } from "./ActionsPanel.tsx";

export function Cockpit(props: { session: RoomSession; deviceId: string; role: string }) {
  const { session, deviceId, role } = props;
  const canDrive = DRIVER_ROLES.includes(role);
  // The setpoint is read through a ref at every command tick, so the driving hook's latest closure counts.
  let readHands: typeof driving.setpoint = () => ({});
  const cockpit = useCockpit(session, deviceId, canDrive, (profile, leaseId) => readHands(profile, leaseId));
  const driving = useDriving(cockpit.profile, { enabled: canDrive, onEStop: cockpit.estop });
  readHands = driving.setpoint;
  const isLatched = latched(cockpit);

  return (
    <div class={`cockpit${isLatched ? " is-latched" : ""}`} data-device={deviceId}>
      {cockpit.notice && (
        <p class={`notice ${cockpit.notice.kind}`} role={cockpit.notice.kind === "error" ? "alert" : "status"} data-testid="notice">{cockpit.notice.text}</p>
      )}
      <div class="cockpit-grid">
        <LeasePanel cockpit={cockpit} session={session} role={role} />
        <TelemetryPanel profile={cockpit.profile} telemetry={cockpit.telemetry} history={cockpit.history} />
        {canDrive && <DrivePanel profile={cockpit.profile} driving={driving} holding={cockpit.holding} axes={cockpit.controls?.axes ?? {}} />}
        {canDrive && <ActionsPanel profile={cockpit.profile} controls={cockpit.controls} holding={cockpit.holding} />}
        <LatencyPanel profile={cockpit.profile} latency={cockpit.latency} demoted={cockpit.demoted} holding={cockpit.holding} />
        <CameraPanel session={session} deviceId={deviceId} />
      </div>
      {canDrive && <EStopBar cockpit={cockpit} role={role} />}
    </div>
  );
}
