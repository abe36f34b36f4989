/**
 * The configuration of a Janus this node starts (JanusProcess), written per node into a
 * folder of its own: only what the voice needs is loaded, and nothing is left open.
 *
 * Janus 1.1.2's defaults are open, so every one that matters is set here:
 * - the Janus and Admin APIs: WebSockets only, each on `host` (loopback, or a configured
 *   private address) and never on all interfaces; no HTTP, MQTT, nanomsg, RabbitMQ or
 *   Unix-socket transport;
 * - `api_secret` (this node's calls) and `token_auth` (clients: a token this node added
 *   for them, with the plugins they may attach to); `admin_secret`, never the sample's;
 * - VideoRoom and Streaming with an `admin_key` (no room or mountpoint created without
 *   it), `lock_rtp_forward`, string ids, no sample rooms or mountpoints; every other
 *   plugin disabled (AudioBridge too: an idle one wakes its mixer every 5 ms);
 * - `reclaim_session_timeout` 10 s, so a dropped control socket does not kill every
 *   session at once; no event handlers or loggers.
 *
 * @example
 *   const files = janusConfigFiles({ folder, host: "127.0.0.1", apiPort, adminPort, secrets, ... });
 *   for (const [name, text] of Object.entries(files)) writeFileSync(path.join(folder, name), text);
 */

export interface JanusSecrets {
  /** Every Janus API request of this node carries it. */
  apiSecret: string;
  /** The Admin API's (adding and removing client tokens). */
  adminSecret: string;
  /** The plugins' admin_key: creating a room or mountpoint needs it. */
  adminKey: string;
}

export interface JanusConfigOptions {
  /** The folder the files are written to (Janus reads its plugins' files from there). */
  folder: string;
  /** Where its plugins and transports are installed. */
  libFolder: string;
  /** The address the APIs listen on: loopback, or a private address (never all interfaces). */
  host: string;
  apiPort: number;
  adminPort: number;
  secrets: JanusSecrets;
  /** Media ports, "min-max". */
  rtpPortRange: string;
  /**
   * The interfaces or addresses Janus gathers ICE candidates on (its `ice_enforce_list`:
   * names or address prefixes, comma-separated); "" for every interface it finds.
   */
  mediaInterfaces: string;
  /** Names this Janus in its own answers (`info`). */
  serverName: string;
  /** Janus' debug level, 0-7. */
  debugLevel: number;
}

/** The plugins loaded; every other one installed is disabled. */
export const JANUS_PLUGINS = ["libjanus_videoroom.so", "libjanus_streaming.so"] as const;
const OTHER_PLUGINS = ["audiobridge", "duktape", "echotest", "lua", "nosip", "recordplay", "sip", "textroom", "videocall", "voicemail"].map((name) => `libjanus_${name}.so`);
const OTHER_TRANSPORTS = ["http", "mqtt", "nanomsg", "pfunix", "rabbitmq"].map((name) => `libjanus_${name}.so`);
/** How long Janus keeps a session whose control socket dropped, s (its default, 0, ends them at once). */
export const RECLAIM_SESSION_S = 10;

/** A libconfig string, quoted. */
function quote(value: string): string {
  if (/[\u0000-\u001f]/.test(value)) throw new Error(`a Janus setting cannot hold control characters: ${JSON.stringify(value)}`);
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

type Setting = string | number | boolean;
function section(name: string, settings: Record<string, Setting>): string {
  const lines = Object.entries(settings).map(([key, value]) => `\t${key} = ${typeof value === "string" ? quote(value) : String(value)}`);
  return `${name}: {\n${lines.join("\n")}\n}\n`;
}

/** The files, by name: janus.jcfg, the WebSockets transport's and the two plugins'. */
export function janusConfigFiles(options: JanusConfigOptions): Record<string, string> {
  const { secrets } = options;
  const header = "# Written by Tsunagi for this node's Janus (server/voice/JanusConfig.ts); rewritten at every start.\n";
  return {
    "janus.jcfg": header
      + section("general", {
        configs_folder: options.folder,
        plugins_folder: `${options.libFolder}/plugins`,
        transports_folder: `${options.libFolder}/transports`,
        events_folder: `${options.libFolder}/events`,
        loggers_folder: `${options.libFolder}/loggers`,
        log_to_stdout: true,
        debug_level: options.debugLevel,
        debug_timestamps: true,
        server_name: options.serverName,
        api_secret: secrets.apiSecret,
        token_auth: true,
        admin_secret: secrets.adminSecret,
        session_timeout: 60,
        reclaim_session_timeout: RECLAIM_SESSION_S,
      })
      + section("media", { rtp_port_range: options.rtpPortRange })
      + section("nat", { ignore_mdns: true, ...(options.mediaInterfaces ? { ice_enforce_list: options.mediaInterfaces } : {}) })
      + section("plugins", { disable: OTHER_PLUGINS.join(",") })
      + section("transports", { disable: OTHER_TRANSPORTS.join(",") })
      + section("loggers", { disable: "libjanus_jsonlog.so" })
      + section("events", { broadcast: false, disable: "libjanus_sampleevh.so,libjanus_wsevh.so,libjanus_mqttevh.so,libjanus_rabbitmqevh.so,libjanus_nanomsgevh.so,libjanus_gelfevh.so" }),
    "janus.transport.websockets.jcfg": header
      + section("general", { json: "compact", ws: true, ws_port: options.apiPort, ws_ip: options.host, wss: false })
      + section("admin", { admin_ws: true, admin_ws_port: options.adminPort, admin_ws_ip: options.host, admin_wss: false }),
    "janus.plugin.videoroom.jcfg": header
      + section("general", { admin_key: secrets.adminKey, lock_rtp_forward: true, string_ids: true }),
    "janus.plugin.streaming.jcfg": header
      + section("general", { admin_key: secrets.adminKey, string_ids: true, rtp_port_range: options.rtpPortRange }),
  };
}
