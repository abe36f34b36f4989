/**
 * A host's tools: announce (to the hall or one area or booth), present at a booth, pin a
 * message, and mute / unmute / kick / ban a visitor in view. Shown only when the room
 * made you a host (ExpoSession.host); the room checks every command all the same.
 */
import { useState } from "preact/hooks";
import type { ExpoSession, HostTools } from "../../../../client-sdk/ExpoSession.ts";
import type { tsunagi } from "../../../../proto/index.ts";
import { describeError } from "./describe.ts";

export function HostPanel(props: { expo: ExpoSession; host: HostTools; presenting: ReadonlySet<string>; neighboursVersion: number }) {
  const { expo, host } = props;
  const hall = expo.hall;
  const [result, setResult] = useState<{ error: boolean; text: string } | undefined>();
  const [busy, setBusy] = useState(false);
  const [announceText, setAnnounceText] = useState("");
  const [announceArea, setAnnounceArea] = useState("");
  const [booth, setBooth] = useState(hall.booths?.[0]?.boothId ?? "");
  const [title, setTitle] = useState("");
  const [pinText, setPinText] = useState("");
  const [visitor, setVisitor] = useState("");
  const [reason, setReason] = useState("");

  const run = async (what: string, command: () => Promise<tsunagi.v1.HostResult>) => {
    setBusy(true);
    try {
      const answer = await command();
      setResult({ error: false, text: `${what}: delivered to ${answer.delivered}${answer.detail ? ` (${answer.detail})` : ""}` });
      return true;
    } catch (error) {
      const why = describeError(error);
      setResult({ error: true, text: `${what} refused (${why.codeName}): ${why.message}` });
      return false;
    } finally {
      setBusy(false);
    }
  };
  const visitors = [...expo.neighbours.values()].filter((n) => n.role !== "host");
  const chosen = Number(visitor) || 0;
  const live = props.presenting.has(booth);

  return (
    <section class="card host" aria-labelledby="expo-host-title">
      <h2 id="expo-host-title">Host tools</h2>
      <form onSubmit={(event) => { event.preventDefault(); void run("Announcement", () => host.announce(announceText.trim(), announceArea)).then((ok) => ok && setAnnounceText("")); }}>
        <label for="host-announce">Announce</label>
        <input id="host-announce" type="text" maxLength={500} value={announceText} onInput={(e) => setAnnounceText((e.target as HTMLInputElement).value)} />
        <label for="host-announce-area">To</label>
        <div class="row">
          <select id="host-announce-area" value={announceArea} onChange={(e) => setAnnounceArea((e.target as HTMLSelectElement).value)}>
            <option value="">The whole hall</option>
            {hall.areas?.map((a) => <option key={a.areaId} value={a.areaId ?? ""}>Area: {a.name || a.areaId}</option>)}
            {hall.booths?.map((b) => <option key={b.boothId} value={b.boothId ?? ""}>Booth: {b.name || b.boothId}</option>)}
          </select>
          <button type="submit" disabled={busy || !announceText.trim()}>Announce</button>
        </div>
      </form>
      <form onSubmit={(event) => { event.preventDefault(); void run(live ? "Presentation stopped" : "Presentation started", () => live ? host.stopPresentation(booth) : host.startPresentation(booth, title.trim())); }}>
        <label for="host-booth">Present at booth</label>
        <select id="host-booth" value={booth} onChange={(e) => setBooth((e.target as HTMLSelectElement).value)}>
          {hall.booths?.map((b) => <option key={b.boothId} value={b.boothId ?? ""}>{b.name || b.boothId}{props.presenting.has(b.boothId!) ? " (live)" : ""}</option>)}
        </select>
        <label for="host-title">Title</label>
        <div class="row">
          <input id="host-title" type="text" maxLength={200} value={title} disabled={live} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
          <button type="submit" disabled={busy || !booth}>{live ? "Stop presenting" : "Start presenting"}</button>
        </div>
      </form>
      <form onSubmit={(event) => { event.preventDefault(); void run(pinText.trim() ? "Pinned" : "Unpinned", () => host.pin(pinText.trim())); }}>
        <label for="host-pin">Pin a message (empty: unpin)</label>
        <div class="row">
          <input id="host-pin" type="text" maxLength={500} value={pinText} onInput={(e) => setPinText((e.target as HTMLInputElement).value)} />
          <button type="submit" disabled={busy}>{pinText.trim() ? "Pin" : "Unpin"}</button>
        </div>
      </form>
      <fieldset>
        <legend>Moderate a visitor in view</legend>
        <label for="host-visitor">Visitor</label>
        <select id="host-visitor" value={visitor} onChange={(e) => setVisitor((e.target as HTMLSelectElement).value)}>
          <option value="">Choose…</option>
          {visitors.map((n) => <option key={n.visitorId} value={String(n.visitorId)}>{n.name || `visitor ${n.visitorId}`} (#{n.visitorId})</option>)}
        </select>
        <label for="host-reason">Reason (shown to them)</label>
        <input id="host-reason" type="text" maxLength={200} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
        <div class="row buttons">
          <button type="button" disabled={busy || !chosen} onClick={() => run("Muted", () => host.mute(chosen, 0, reason.trim()))}>Mute</button>
          <button type="button" disabled={busy || !chosen} onClick={() => run("Unmuted", () => host.unmute(chosen))}>Unmute</button>
          <button type="button" class="danger" disabled={busy || !chosen} onClick={() => run("Kicked", () => host.kick(chosen, reason.trim()))}>Kick</button>
          <button type="button" class="danger" disabled={busy || !chosen} onClick={() => { if (confirm("Ban this visitor from the hall?")) void run("Banned", () => host.ban({ visitorId: chosen }, reason.trim())); }}>Ban</button>
        </div>
      </fieldset>
      <p class={result?.error ? "error" : "ok"} role="status" data-testid="host-result">{result?.text ?? ""}</p>
    </section>
  );
}
