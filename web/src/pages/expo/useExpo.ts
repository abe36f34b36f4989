/**
 * The expo session's events as page state: who is near (membership only: positions are
 * read live by the plan), booths near and areas entered, notices, chat, the pinned
 * message, presentations, and how the session ended.
 */
import { useEffect, useState } from "preact/hooks";
import type { ExpoSession } from "../../../../client-sdk/ExpoSession.ts";
import type { tsunagi } from "../../../../proto/index.ts";
import type { TsunagiError } from "../../../../common/TsunagiError.ts";
import { moderationText, placeName } from "./describe.ts";

export interface Notice {
  id: number;
  kind: "announcement" | "booth" | "area" | "moderation" | "pinned" | "error";
  text: string;
  atMs: number;
}

export interface ExpoState {
  /** Bumped when someone appears or goes (and once a second, for distances). */
  neighboursVersion: number;
  boothsNear: string[];
  areas: string[];
  presentations: tsunagi.v1.IBoothState[];
  pinned: tsunagi.v1.IPinnedMessage;
  notices: Notice[];
  chat: tsunagi.v1.ChatMessage[];
  /** Why the session ended (kicked, banned, hall closed, connection lost); undefined while in. */
  ended?: { code: number; error?: TsunagiError };
}

const MAX_NOTICES = 30;
const MAX_CHAT = 200;
let nextNoticeId = 1;

export function useExpo(expo: ExpoSession): [ExpoState, (message: tsunagi.v1.ChatMessage) => void] {
  const [state, setState] = useState<ExpoState>(() => ({
    neighboursVersion: 0, boothsNear: [...expo.boothsNear], areas: [...expo.areas],
    presentations: [...expo.presentations.values()], pinned: expo.pinned, notices: [], chat: [],
  }));

  useEffect(() => {
    const hall = expo.hall;
    const notice = (kind: Notice["kind"], text: string) => setState((s) => ({
      ...s, notices: [{ id: nextNoticeId++, kind, text, atMs: Date.now() }, ...s.notices].slice(0, MAX_NOTICES),
    }));
    const places = () => setState((s) => ({ ...s, boothsNear: [...expo.boothsNear], areas: [...expo.areas] }));
    const offs = [
      expo.on("neighbours", (changes) => {
        if (changes.appeared.length || changes.gone.length) setState((s) => ({ ...s, neighboursVersion: s.neighboursVersion + 1 }));
      }),
      expo.on("boothNear", (id) => { places(); notice("booth", `Near the booth ${placeName(hall, id)}`); }),
      expo.on("boothFar", () => places()),
      expo.on("areaEntered", (id) => { places(); notice("area", `You entered ${placeName(hall, id)}`); }),
      expo.on("areaLeft", (id) => { places(); notice("area", `You left ${placeName(hall, id)}`); }),
      expo.on("announcement", (a) => notice("announcement", `${a.fromName ? `${a.fromName} ` : ""}announces${a.areaId ? ` (${placeName(hall, a.areaId)})` : ""}: ${a.text}`)),
      expo.on("boothState", (b) => {
        setState((s) => ({ ...s, presentations: [...expo.presentations.values()] }));
        notice("booth", b.live ? `Live at ${placeName(hall, b.boothId)}: ${b.title || "a presentation"}${b.presenter ? ` (${b.presenter})` : ""}` : `The presentation at ${placeName(hall, b.boothId)} ended`);
      }),
      expo.on("pinned", (p) => {
        setState((s) => ({ ...s, pinned: p }));
        notice("pinned", p.text ? `Pinned${p.by ? ` by ${p.by}` : ""}: ${p.text}` : "The pinned message was removed");
      }),
      expo.on("moderation", (m) => notice("moderation", moderationText(m))),
      expo.on("chat", (message) => setState((s) => s.chat.some((c) => c.messageId === message.messageId) ? s : { ...s, chat: [...s.chat, message].slice(-MAX_CHAT) })),
      expo.on("leave", (event) => setState((s) => ({ ...s, ended: { code: event.code, error: event.error } }))),
    ];
    // Distances in the list of what is near change as people walk: refresh it once a second.
    const timer = setInterval(() => setState((s) => ({ ...s, neighboursVersion: s.neighboursVersion + 1 })), 1000);
    return () => { for (const off of offs) off(); clearInterval(timer); };
  }, [expo]);

  /** Your own message as delivered (the room may send it to you as well: duplicates are dropped by id). */
  const addChat = (message: tsunagi.v1.ChatMessage) => setState((s) => s.chat.some((c) => c.messageId === message.messageId) ? s : { ...s, chat: [...s.chat, message].slice(-MAX_CHAT) });
  return [state, addChat];
}
