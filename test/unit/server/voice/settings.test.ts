/**
 * The voice settings: an external Janus needs its Admin API and its secrets file, on a
 * loopback or private address over ws(s)://; media never on loopback.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { voiceDefaults, voiceSettings } from "../../../../server/voice/settings.ts";

function problems(voice: Partial<z.input<typeof voiceSettings>>): string {
  const parsed = voiceSettings.safeParse({ ...voiceDefaults, ...voice });
  return parsed.success ? "" : z.prettifyError(parsed.error);
}

describe("voice settings", () => {
  it("takes the defaults (the node's own Janus) and a complete external one", () => {
    expect(problems({})).toBe("");
    expect(problems({ janusUrl: "ws://10.0.0.7:8188", janusAdminUrl: "ws://10.0.0.7:7188", janusSecretsFile: "/run/secrets/janus.json" })).toBe("");
  });

  it("refuses an external Janus without its Admin API or secrets, on a public address, or not over WebSockets", () => {
    const incomplete = problems({ janusUrl: "ws://10.0.0.7:8188" });
    expect(incomplete).toMatch(/needed with janusUrl\s+→ at janusAdminUrl/);
    expect(incomplete).toMatch(/needed with janusUrl: the external Janus' api secret[^\n]*\s+→ at janusSecretsFile/);
    expect(problems({ janusUrl: "ws://8.8.8.8:8188", janusAdminUrl: "ws://10.0.0.7:7188", janusSecretsFile: "f" })).toMatch(/private address[^\n]*\s+→ at janusUrl/);
    expect(problems({ janusUrl: "http://10.0.0.7:8088", janusAdminUrl: "ws://10.0.0.7:7188", janusSecretsFile: "f" })).toMatch(/ws:\/\/ or wss:\/\//);
    expect(problems({ janusAdminUrl: "ws://10.0.0.7:7188" })).toMatch(/go with janusUrl/);
  });

  it("refuses media on loopback", () => {
    expect(problems({ mediaInterfaces: "127.0.0.1" })).toMatch(/loopback/);
  });
});
