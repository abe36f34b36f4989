/**
 * janusConfigFiles: what a node's Janus is allowed, written out. Both APIs on the given
 * address only, secrets of its own (never the sample's), tokens for clients, only the
 * plugins voice needs, each behind an admin_key, and sessions that survive a dropped
 * control socket for 10 s. Strings are quoted; a control character is refused.
 */
import { describe, expect, it } from "vitest";
import { janusConfigFiles, RECLAIM_SESSION_S, type JanusConfigOptions } from "../../../../server/voice/JanusConfig.ts";
import { mediaInterfacesProblem } from "../../../../server/voice/settings.ts";

const options: JanusConfigOptions = {
  folder: "/run/janus-node", libFolder: "/usr/lib/x86_64-linux-gnu/janus", host: "127.0.0.1", apiPort: 41000, adminPort: 41001,
  secrets: { apiSecret: "api-secret-1", adminSecret: "admin-secret-1", adminKey: "admin-key-1" },
  rtpPortRange: "20000-20999", mediaInterfaces: "", serverName: "tokyo-1", debugLevel: 4,
};

/** `key = value` of `section` in a jcfg text (values as written). */
function settings(text: string, section: string): Record<string, string> {
  const body = new RegExp(`^${section}: \\{\\n([\\s\\S]*?)\\n\\}`, "m").exec(text)?.[1] ?? "";
  return Object.fromEntries(body.split("\n").map((line) => /^\t(\w+) = (.*)$/.exec(line)).filter((m) => m).map((m) => [m![1], m![2]]));
}

describe("janusConfigFiles", () => {
  const files = janusConfigFiles(options);

  it("writes the core, the WebSockets transport and the two plugins' files, nothing else", () => {
    expect(Object.keys(files).sort()).toEqual(["janus.jcfg", "janus.plugin.streaming.jcfg", "janus.plugin.videoroom.jcfg", "janus.transport.websockets.jcfg"]);
  });

  it("sets the API secret, token auth, its own admin secret and the session reclaim window", () => {
    const general = settings(files["janus.jcfg"]!, "general");
    expect(general).toMatchObject({ api_secret: '"api-secret-1"', token_auth: "true", admin_secret: '"admin-secret-1"', reclaim_session_timeout: String(RECLAIM_SESSION_S) });
    expect(RECLAIM_SESSION_S).toBeGreaterThanOrEqual(10);
    expect(Object.values(files).join("\n")).not.toMatch(/janusoverlord|janusrocks|supersecret|adminpwd/);
  });

  it("listens on the given address only, over WebSockets only, with the Admin API beside it", () => {
    expect(settings(files["janus.transport.websockets.jcfg"]!, "general")).toMatchObject({ ws: "true", ws_port: "41000", ws_ip: '"127.0.0.1"', wss: "false" });
    expect(settings(files["janus.transport.websockets.jcfg"]!, "admin")).toMatchObject({ admin_ws: "true", admin_ws_port: "41001", admin_ws_ip: '"127.0.0.1"' });
    const disabled = settings(files["janus.jcfg"]!, "transports").disable!;
    for (const transport of ["http", "mqtt", "nanomsg", "pfunix", "rabbitmq"]) expect(disabled).toContain(`libjanus_${transport}.so`);
    expect(disabled).not.toContain("websockets");
  });

  it("loads VideoRoom and Streaming only, each behind the admin_key, with string ids and no sample rooms", () => {
    const disabled = settings(files["janus.jcfg"]!, "plugins").disable!;
    for (const plugin of ["audiobridge", "echotest", "sip", "textroom", "videocall", "voicemail", "recordplay", "lua", "duktape", "nosip"]) expect(disabled).toContain(`libjanus_${plugin}.so`);
    expect(disabled).not.toMatch(/videoroom|streaming/);
    expect(settings(files["janus.plugin.videoroom.jcfg"]!, "general")).toEqual({ admin_key: '"admin-key-1"', lock_rtp_forward: "true", string_ids: "true" });
    expect(settings(files["janus.plugin.streaming.jcfg"]!, "general")).toMatchObject({ admin_key: '"admin-key-1"', string_ids: "true" });
    expect(files["janus.plugin.videoroom.jcfg"]).not.toMatch(/^room-/m);
  });

  it("quotes strings, and refuses a control character", () => {
    const quoted = janusConfigFiles({ ...options, serverName: 'a "quoted" \\ name' });
    expect(settings(quoted["janus.jcfg"]!, "general").server_name).toBe('"a \\"quoted\\" \\\\ name"');
    expect(() => janusConfigFiles({ ...options, serverName: "line\nbreak = true" })).toThrow(/control characters/);
  });

  it("gathers media candidates only where told, and everywhere by default", () => {
    expect(settings(files["janus.jcfg"]!, "nat").ice_enforce_list).toBeUndefined();
    const own = janusConfigFiles({ ...options, mediaInterfaces: "10.1.2.3" });
    expect(settings(own["janus.jcfg"]!, "nat")).toMatchObject({ ice_enforce_list: '"10.1.2.3"', ignore_mdns: "true" });
  });

  it("refuses loopback for media: Janus 1.1.2 gathers nothing there (and would gather everywhere else)", () => {
    for (const loopback of ["127.0.0.1", "lo", "eth0,lo", "::1", "localhost"]) expect(mediaInterfacesProblem(loopback)).toMatch(/loopback/);
    for (const fine of ["", "eth0", "10.1.2.3", "192.168.1.7,eth1", "local0"]) expect(mediaInterfacesProblem(fine)).toBeUndefined();
  });
});
