/** Placeholder until the page lands. */
import { Shell } from "../../app/Shell.tsx";

export function ConsolePage(props: { section: string }) {
  return <Shell title="ConsolePage"><p>{props.section}</p></Shell>;
}
