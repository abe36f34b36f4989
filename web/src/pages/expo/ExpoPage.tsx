/** Placeholder until the page lands. */
import { Shell } from "../../app/Shell.tsx";

export function ExpoPage(props: { hallId: string }) {
  return <Shell title="ExpoPage"><p>{props.hallId}</p></Shell>;
}
