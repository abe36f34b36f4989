/** Placeholder until the page lands. */
import { Shell } from "../../app/Shell.tsx";

export function CockpitPage(props: { roomId: string }) {
  return <Shell title="CockpitPage"><p>{props.roomId}</p></Shell>;
}
