/**
 * VoiceSession's view of the room it speaks in (VoiceRoomLink): an expo hall's session
 * (its zone changes, its moves, and where everyone stands, for panning), or any other
 * room's session.
 *
 * @example
 *   const voice = await VoiceSession.start(expoVoiceLink(expo));
 *   const site = await VoiceSession.start(roomVoiceLink(teleopSession), { speak: true });
 */
import type { ExpoSession } from "../ExpoSession.ts";
import type { RoomSession } from "../RoomSession.ts";
import type { VoiceRoomLink } from "../VoiceSession.ts";
import type { tsunagi } from "../../proto/index.ts";

export function expoVoiceLink(expo: ExpoSession): VoiceRoomLink {
  return {
    request: (body) => expo.request(body),
    notify: (body) => expo.notify(body),
    onVoiceHear: (handler) => expo.on("voiceHear", handler),
    onRoomChanged: (handler) => {
      const offZone = expo.on("zone", () => handler());
      const offMoved = expo.on("moved", () => handler());
      return () => { offZone(); offMoved(); };
    },
    placement: { me: () => expo.me, visitor: (visitorId) => expo.neighbours.get(visitorId) },
  };
}

export function roomVoiceLink(session: RoomSession): VoiceRoomLink {
  return {
    request: (body) => session.request(body),
    notify: (body) => { if (!session.closed) session.sendEnvelope(body); },
    onVoiceHear: (handler) => session.onEnvelope((envelope) => { if (envelope.body === "voiceHear") handler(envelope.voiceHear as tsunagi.v1.VoiceHear); }),
    onRoomChanged: (handler) => session.on("handoff", () => handler()),
  };
}
