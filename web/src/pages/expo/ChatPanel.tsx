/**
 * Chat on the hall, the booths you are near, and direct to a visitor in view. Refusals
 * (MUTED, MODERATED, RATE_LIMITED, FORBIDDEN away from the booth...) are shown under the input.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { ChatTarget, ExpoSession } from "../../../../client-sdk/ExpoSession.ts";
import type { tsunagi } from "../../../../proto/index.ts";
import { channelLabel, describeError, placeName } from "./describe.ts";

/** "hall", "booth:<id>" or "direct:<visitorId>". */
export type ChannelKey = string;

export function targetOf(key: ChannelKey): ChatTarget {
  const [kind, target = ""] = key.split(/:(.*)/);
  if (kind === "booth") return { kind: "booth", target };
  if (kind === "direct") return { kind: "direct", target: Number(target) };
  return { kind: "hall" };
}

export function ChatPanel(props: {
  expo: ExpoSession; messages: tsunagi.v1.ChatMessage[]; boothsNear: string[]; neighboursVersion: number;
  channel: ChannelKey; onChannel: (key: ChannelKey) => void; onSent: (message: tsunagi.v1.ChatMessage) => void;
}) {
  const { expo } = props;
  const [text, setText] = useState("");
  const [status, setStatus] = useState<{ error: boolean; text: string } | undefined>();
  const [sending, setSending] = useState(false);
  const logRef = useRef<HTMLDivElement>(null);
  const nameOf = (id: number) => id === expo.visitorId ? "you" : expo.neighbours.get(id)?.name || `visitor ${id}`;

  useEffect(() => {
    const log = logRef.current;
    if (log) log.scrollTop = log.scrollHeight;
  }, [props.messages.length]);

  const options: Array<[ChannelKey, string]> = [["hall", "Hall"]];
  for (const id of props.boothsNear) options.push([`booth:${id}`, `Booth: ${placeName(expo.hall, id)}`]);
  for (const n of expo.neighbours.values()) options.push([`direct:${n.visitorId}`, `Direct: ${n.name || `visitor ${n.visitorId}`}`]);
  // A chosen channel stays listed while it is chosen, even when its booth or visitor went out of reach.
  if (!options.some(([key]) => key === props.channel)) options.push([props.channel, props.channel.startsWith("booth:") ? `Booth: ${placeName(expo.hall, props.channel.slice(6))}` : `Direct: ${nameOf(Number(props.channel.slice(7)))}`]);

  const send = async (event: Event) => {
    event.preventDefault();
    const body = text.trim();
    if (!body || sending) return;
    setSending(true);
    setStatus(undefined);
    try {
      const delivered = await expo.chat(targetOf(props.channel), body);
      props.onSent(delivered);
      setText("");
    } catch (error) {
      const why = describeError(error);
      setStatus({ error: true, text: `Not sent (${why.codeName}): ${why.message}` });
    } finally {
      setSending(false);
    }
  };

  return (
    <section class="card chat" aria-labelledby="expo-chat-title">
      <h2 id="expo-chat-title">Chat</h2>
      <div class="chat-log" ref={logRef} role="log" aria-label="Chat messages" tabIndex={0}><ol>
        {props.messages.length === 0 && <li class="muted">No messages yet.</li>}
        {props.messages.map((m) => (
          <li key={m.messageId} class={m.fromVisitorId === expo.visitorId ? "mine" : ""} data-channel={m.channel?.kind}>
            <span class="chan">[{channelLabel(m.channel, nameOf)}]</span> <strong>{m.fromVisitorId === expo.visitorId ? "You" : m.fromName}</strong>: <span class="text">{m.text}</span>
          </li>
        ))}
      </ol></div>
      <form class="chat-form" onSubmit={send}>
        <label for="expo-chat-channel">Channel</label>
        <select id="expo-chat-channel" value={props.channel} onChange={(event) => props.onChannel((event.target as HTMLSelectElement).value)}>
          {options.map(([key, label]) => <option key={key} value={key}>{label}</option>)}
        </select>
        <label for="expo-chat-input">Message</label>
        <div class="row">
          <input id="expo-chat-input" type="text" maxLength={500} value={text} autoComplete="off" onInput={(event) => setText((event.target as HTMLInputElement).value)} />
          <button type="submit" disabled={sending || !text.trim()}>Send</button>
        </div>
      </form>
      <p class={status?.error ? "error" : "muted"} role="status" aria-live="polite">{status?.text ?? ""}</p>
    </section>
  );
}
