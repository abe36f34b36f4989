/**
 * The operations console (`/console/<section>`): a nav of its sections, each its own
 * component, all behind the token gate (default role admin; `?as=ROLE` in dev mode).
 * The page offers admin controls only to an admin token, and the teleop controls only to
 * the roles the teleop room admits; the server checks every call whatever the page shows.
 */
import { Shell } from "../../app/Shell.tsx";
import { TokenGate, type Identity } from "../../app/TokenGate.tsx";
import { requestedRole } from "../../app/token.ts";
import { RegionsSection } from "./RegionsSection.tsx";
import { RoomsSection } from "./RoomsSection.tsx";
import { ExpoSection } from "./ExpoSection.tsx";
import { TeleopSection } from "./TeleopSection.tsx";
import { AdminSection } from "./AdminSection.tsx";

export const SECTIONS = [
  { id: "regions", label: "Regions" },
  { id: "rooms", label: "Rooms" },
  { id: "expo", label: "Expo" },
  { id: "teleop", label: "Teleop" },
  { id: "admin", label: "Admin" },
] as const;

function ConsoleNav(props: { current: string }) {
  // keeps ?as=ROLE (dev mode) from section to section
  const query = location.search;
  return (
    <nav class="nav console-nav" aria-label="Console sections">
      {SECTIONS.map((section) => (
        <a href={`/console/${section.id}${query}`} aria-current={section.id === props.current ? "page" : undefined}>{section.label}</a>
      ))}
    </nav>
  );
}

function Section(props: { section: string; identity: Identity }) {
  const { token, role } = props.identity;
  switch (props.section) {
    case "regions": return <RegionsSection token={token} />;
    case "rooms": return <RoomsSection token={token} role={role} />;
    case "expo": return <ExpoSection token={token} role={role} />;
    case "teleop": return <TeleopSection token={token} role={role} />;
    case "admin": return <AdminSection token={token} role={role} />;
    default: return <p class="notice">No section “{props.section}”. Pick one above.</p>;
  }
}

export function ConsolePage(props: { section: string }) {
  const section = SECTIONS.some((s) => s.id === props.section) ? props.section : props.section || "regions";
  const label = SECTIONS.find((s) => s.id === section)?.label ?? "Console";
  return (
    <TokenGate role={requestedRole("admin")}>
      {(identity) => (
        <Shell title={`Operations · ${label}`} who={identity} nav={<ConsoleNav current={section} />}>
          <div class="console" data-section={section} data-role={identity.role}>
            <Section section={section} identity={identity} />
          </div>
        </Shell>
      )}
    </TokenGate>
  );
}
