/**
 * What every client of the node's Janus shares (JanusVoiceBackend, JanusCameras): reading
 * an answer, the random secrets and tokens handed out, and ending the handles a client's
 * token opened.
 *
 * - An answer that is an error (Janus' core or the plugin's `error_code`) becomes an
 *   Error naming what was asked; any other answer gives the plugin's data.
 * - A secret or token is 18 random bytes, base64url: no character Janus' JSON or a
 *   libconfig file would need escaped.
 * - Removing a token (Admin API `remove_token`) stops it opening anything new, but what
 *   it opened goes on: endHandlesOfToken() detaches those handles (Admin API), which ends
 *   their PeerConnections, and leaves the rest of each session alone.
 *
 * @example
 *   const data = pluginData(await handle.message({ request: "create", ... }), "a mountpoint");
 *   const token = randomSecret();
 *   await endHandlesOfToken(admin, token);
 */
import { randomBytes } from "node:crypto";
import type { JanodeConnection } from "janode";

/** A Janus answer that is an error, as an Error; the plugin's data otherwise. */
export function pluginData(answer: any, what: string): any {
  if (answer?.janus === "error") throw new Error(`Janus refused ${what}: ${answer.error?.reason ?? JSON.stringify(answer.error)}`);
  const data = answer?.plugindata?.data ?? answer?.data ?? answer;
  if (data?.error_code) throw new Error(`Janus refused ${what}: ${data.error} (${data.error_code})`);
  return data;
}

/** A fresh secret, token or pin. */
export function randomSecret(): string {
  return randomBytes(18).toString("base64url");
}

/**
 * Detaches every handle `token` opened, in every session (Admin API: list_sessions,
 * list_handles, handle_info, detach_handle); resolves with how many. One session or
 * handle gone meanwhile is skipped. It asks about every handle of this Janus, so it is
 * for the rare end of a grant, not for a hot path.
 */
export async function endHandlesOfToken(admin: JanodeConnection, token: string): Promise<number> {
  const sessions: number[] = (await admin.sendRequest({ janus: "list_sessions" }))?.sessions ?? [];
  let ended = 0;
  for (const sessionId of sessions) {
    const handles: number[] = (await admin.sendRequest({ janus: "list_handles", session_id: sessionId }).catch(() => undefined))?.handles ?? [];
    for (const handleId of handles) {
      const about = await admin.sendRequest({ janus: "handle_info", session_id: sessionId, handle_id: handleId }).catch(() => undefined);
      if (about?.info?.token !== token) continue;
      await admin.sendRequest({ janus: "detach_handle", session_id: sessionId, handle_id: handleId }).then(() => { ended++; }, () => { /* gone meanwhile */ });
    }
  }
  return ended;
}
