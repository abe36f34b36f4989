/**
 * A Janus this node does not start (`voice.janusUrl`): one run beside the node by its
 * platform (a sidecar, a VM). Its addresses come from the settings and its secrets from a
 * file (`voice.janusSecretsFile`, JSON: apiSecret, adminSecret, adminKey), and it must
 * hold to what JanusConfig sets for the node's own, checked at connect; the node does not
 * start with voice on a Janus that does not:
 *
 * - it answers on a loopback or private address (settings.ts refuses any other);
 * - a request without the API secret is refused (`api_secret` set);
 * - `token_auth` is on, and `reclaim_session_timeout` at least RECLAIM_SESSION_S (its
 *   Admin API's get_status, with the admin secret);
 * - VideoRoom refuses a room created without the admin key, and makes one with it.
 *
 * Nobody here restarts it: `watchExternalJanus` asks it every second, and reports it lost
 * when it stops answering (or the node's connections to it dropped) and back when it
 * answers again, so the backends reconnect and make their rooms again, as after a restart
 * of the node's own Janus.
 *
 * @example
 *   const endpoint = await externalJanus({ apiUrl, adminUrl, secretsFile });
 *   const stop = watchExternalJanus(endpoint, { lost: () => ..., back: () => ..., connected: () => backend.health().up });
 */
import { randomBytes } from "node:crypto";
import Janode from "janode";
import { readSecretFile } from "../../common/secrets.ts";
import { RECLAIM_SESSION_S, type JanusSecrets } from "./JanusConfig.ts";
import { janusInfo, janusOnce, type JanusEndpoint } from "./JanusProcess.ts";
import { JanusLink } from "./JanusLink.ts";

/** How often an external Janus is asked whether it is there. */
export const EXTERNAL_CHECK_MS = 1000;

export interface ExternalJanusOptions {
  apiUrl: string;
  adminUrl: string;
  secretsFile: string;
}

/** The external Janus' endpoint, once it passed every check; an Error naming each problem otherwise. */
export async function externalJanus(options: ExternalJanusOptions): Promise<JanusEndpoint> {
  const secrets = readSecrets(options.secretsFile);
  const endpoint: JanusEndpoint = { apiUrl: options.apiUrl, adminUrl: options.adminUrl, secrets };
  if (!(await janusInfo(endpoint.apiUrl, 5000))) throw new Error(`voice: no Janus answers at ${endpoint.apiUrl} (voice.janusUrl)`);
  const problems: string[] = [];
  if ((await janusOnce(endpoint.apiUrl, { janus: "create" }, 5000))?.janus !== "error") problems.push("it answers requests without its API secret: set api_secret in its janus.jcfg");
  const admin = await Janode.connect({ address: { url: endpoint.adminUrl, apisecret: secrets.adminSecret }, is_admin: true, max_retries: 1, retry_time_secs: 1 })
    .catch((error: Error) => { throw new Error(`voice: the external Janus' Admin API at ${endpoint.adminUrl} refused us: ${error.message} (voice.janusAdminUrl, adminSecret)`); });
  try {
    const status = (await admin.sendRequest({ janus: "get_status" }))?.status ?? {};
    if (status.token_auth !== true) problems.push("token_auth is off: clients could use it without a grant (token_auth = true in janus.jcfg)");
    if (!(status.reclaim_session_timeout >= RECLAIM_SESSION_S)) problems.push(`reclaim_session_timeout is ${status.reclaim_session_timeout ?? 0} s: a dropped control socket would end every session at once (at least ${RECLAIM_SESSION_S})`);
  } finally {
    await admin.close().catch(() => {});
  }
  const videoroom = await JanusLink.open(endpoint, "janus.plugin.videoroom");
  try {
    const room = `tsunagi-check-${randomBytes(6).toString("hex")}`;
    const unkeyed = await videoroom.ask({ request: "create", room, is_private: true }, "a room without the admin key").then(() => "made", () => "refused");
    if (unkeyed === "made") {
      problems.push("VideoRoom creates rooms without an admin_key: anyone could (admin_key in janus.plugin.videoroom.jcfg)");
      await videoroom.ask({ request: "destroy", room }, "the check's room").catch(() => {});
    }
    const secret = randomBytes(12).toString("hex");
    const keyed = await videoroom.ask({ request: "create", room, admin_key: secrets.adminKey, secret, is_private: true }, "a room with the admin key")
      .then(() => undefined, (error: Error) => error.message);
    if (keyed) problems.push(`VideoRoom refused a room with our admin key (adminKey): ${keyed}`);
    else await videoroom.ask({ request: "destroy", room, secret }, "the check's room").catch(() => {});
  } finally {
    await videoroom.close();
  }
  if (problems.length > 0) throw new Error(`voice: the external Janus at ${endpoint.apiUrl} is not safe to use:\n  - ${problems.join("\n  - ")}`);
  return endpoint;
}

/**
 * Asks the external Janus every EXTERNAL_CHECK_MS: `lost` once when it stops answering,
 * `back` once it answers again (or when it answers but `connected()` says the node's
 * connections to it dropped: it restarted between two checks). Returns the stop.
 */
export function watchExternalJanus(endpoint: JanusEndpoint, on: { lost(): void; back(): void; connected(): boolean }): () => void {
  let lost = false;
  let checking = false;
  const timer = setInterval(async () => {
    if (checking) return;
    checking = true;
    try {
      const answers = await janusInfo(endpoint.apiUrl, EXTERNAL_CHECK_MS);
      if (!answers && !lost) { lost = true; on.lost(); }
      else if (answers && (lost || !on.connected())) { lost = false; on.back(); }
    } finally {
      checking = false;
    }
  }, EXTERNAL_CHECK_MS);
  timer.unref?.();
  return () => clearInterval(timer);
}

function readSecrets(file: string): JanusSecrets {
  let parsed: Partial<Record<keyof JanusSecrets, unknown>>;
  try {
    parsed = JSON.parse(readSecretFile(file, "voice.janusSecretsFile"));
  } catch (error) {
    throw new Error(`voice.janusSecretsFile ${file}: ${(error as Error).message}`, { cause: error });
  }
  const missing = (["apiSecret", "adminSecret", "adminKey"] as const).filter((key) => typeof parsed?.[key] !== "string" || (parsed[key] as string).length < 8);
  if (missing.length > 0) throw new Error(`voice.janusSecretsFile ${file}: needs ${missing.join(", ")} (strings of at least 8 characters)`);
  return { apiSecret: parsed.apiSecret as string, adminSecret: parsed.adminSecret as string, adminKey: parsed.adminKey as string };
}
