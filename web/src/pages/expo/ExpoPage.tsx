/**
 * /expo/:hallId: the visitor's (or host's, `?as=host` in dev mode) page. TokenGate finds
 * the token; the page joins the hall with the SDK and shows it (ExpoView), or says why
 * it cannot: no such hall, a token that does not admit you, kicked, banned, the hall
 * closed. The server's message is shown as it is, with a retry where retrying may help.
 */
import { useEffect, useState } from "preact/hooks";
import { Shell } from "../../app/Shell.tsx";
import { TokenGate, type Identity } from "../../app/TokenGate.tsx";
import { requestedRole } from "../../app/token.ts";
import { TsunagiClient } from "../../../../client-sdk/TsunagiClient.ts";
import { ExpoSession } from "../../../../client-sdk/ExpoSession.ts";
import { describeError, headlineOf } from "./describe.ts";
import { ExpoView } from "./ExpoView.tsx";

export function ExpoPage(props: { hallId: string }) {
  return (
    <TokenGate role={requestedRole("visitor")}>
      {(identity) => <ExpoJoin hallId={props.hallId} identity={identity} />}
    </TokenGate>
  );
}

type Joining =
  | { phase: "joining" }
  | { phase: "in"; expo: ExpoSession }
  | { phase: "failed"; code?: number; codeName: string; message: string; retryable: boolean };

function ExpoJoin(props: { hallId: string; identity: Identity }) {
  const [attempt, setAttempt] = useState(0);
  const [state, setState] = useState<Joining>({ phase: "joining" });

  useEffect(() => {
    let cancelled = false;
    let joined: ExpoSession | undefined;
    setState({ phase: "joining" });
    const client = new TsunagiClient({ url: location.origin, token: props.identity.token });
    ExpoSession.join(client, props.hallId).then((expo) => {
      if (cancelled) { void expo.leave(); return; }
      joined = expo;
      setState({ phase: "in", expo });
    }, (error) => {
      if (!cancelled) setState({ phase: "failed", ...describeError(error) });
    });
    const leaveOnUnload = () => { void joined?.leave(); };
    addEventListener("pagehide", leaveOnUnload);
    return () => { cancelled = true; removeEventListener("pagehide", leaveOnUnload); void joined?.leave(); };
  }, [props.hallId, props.identity.token, attempt]);

  const who = { role: props.identity.role, sub: props.identity.sub };
  if (state.phase === "in") {
    return <ExpoView expo={state.expo} who={who} onRejoin={() => setAttempt((n) => n + 1)} />;
  }
  return (
    <Shell title={`Expo · ${props.hallId}`} who={who}>
      {state.phase === "joining" ? <p class="muted" role="status">Joining the hall…</p> : (
        <JoinProblem hallId={props.hallId} code={state.code} codeName={state.codeName} message={state.message} retryable={state.retryable} onRetry={() => setAttempt((n) => n + 1)} />
      )}
    </Shell>
  );
}

/** Why the page is not (or no longer) in the hall, and a retry where it may help. */
export function JoinProblem(props: { hallId: string; code?: number; codeName: string; message: string; retryable: boolean; onRetry: () => void }) {
  return (
    <section class="card problem" role="alert" data-code={props.codeName}>
      <h2>{headlineOf(props.code, props.hallId)}</h2>
      <p><span class="muted">{props.codeName}:</span> {props.message}</p>
      {props.retryable ? <button type="button" onClick={props.onRetry}>Try again</button> : <p class="muted">Trying again will not help; ask the organiser.</p>}
    </section>
  );
}
