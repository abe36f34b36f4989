/** The hall's notices as they arrive (announcements, presentations, booths and areas, moderation) and the pinned message: read out politely. */
import type { tsunagi } from "../../../../proto/index.ts";
import type { Notice } from "./useExpo.ts";

export function Notices(props: { notices: Notice[]; pinned: tsunagi.v1.IPinnedMessage }) {
  return (
    <section class="card notices" aria-labelledby="expo-notices-title">
      <h2 id="expo-notices-title">Notices</h2>
      <div aria-live="polite" aria-atomic="false" class="live">
        {props.pinned.text && <p class="pinned" data-testid="pinned"><strong>Pinned</strong>{props.pinned.by ? ` by ${props.pinned.by}` : ""}: {props.pinned.text}</p>}
        <ul class="notice-list">
          {props.notices.map((notice) => (
            <li key={notice.id} class={`notice ${notice.kind}`} data-kind={notice.kind}>
              <time dateTime={new Date(notice.atMs).toISOString()}>{new Date(notice.atMs).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</time> {notice.text}
            </li>
          ))}
        </ul>
      </div>
      {props.notices.length === 0 && !props.pinned.text && <p class="muted">Nothing yet.</p>}
    </section>
  );
}
