/**
 * JanusProcess against Debian's real `janus`: it listens on loopback only, refuses a
 * request without its API secret and a room created without its admin_key, comes back
 * by itself after a SIGKILL (onRestart called, same address, same secrets), and is gone
 * after stop(). One Janus for the file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import WebSocket from "ws";
import { JanusProcess, janusInfo } from "../../server/voice/JanusProcess.ts";
import { createLogger } from "../../server/observability/logging.ts";
import { waitFor } from "../fixtures/processes.ts";

/** A Janus API socket: send() resolves with the answer to its transaction (acks skipped). */
async function janusSocket(url: string) {
  const socket = new WebSocket(url, "janus-protocol");
  const waiting = new Map<string, (answer: any) => void>();
  let next = 0;
  socket.on("message", (data) => {
    const message = JSON.parse(String(data));
    if (message.janus === "ack") return;
    waiting.get(message.transaction)?.(message);
    waiting.delete(message.transaction);
  });
  await new Promise((resolve, reject) => { socket.once("open", resolve); socket.once("error", reject); });
  return {
    send: (request: Record<string, unknown>) => new Promise<any>((resolve) => {
      const transaction = `t${++next}`;
      waiting.set(transaction, resolve);
      socket.send(JSON.stringify({ ...request, transaction }));
    }),
    close: () => socket.terminate(),
  };
}

/** The addresses (ip:port) process `pid` listens on over TCP, from /proc. */
function listening(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch { /* closed meanwhile */ }
  }
  const addresses: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== "0A" || !inodes.has(fields[9]!)) continue;
      const [hexIp, hexPort] = fields[1]!.split(":");
      const ip = hexIp!.length === 8 ? hexIp!.match(/../g)!.reverse().map((byte) => parseInt(byte, 16)).join(".") : hexIp!;
      addresses.push(`${ip}:${parseInt(hexPort!, 16)}`);
    }
  }
  return addresses.sort();
}

let janus: JanusProcess;
const restarts: number[] = [];
beforeAll(async () => {
  janus = await JanusProcess.start({
    rtpPortRange: "42000-42099", serverName: "janus-test",
    logger: createLogger({ level: "warn", regionId: "test", nodeId: "janus-test" }),
    onRestart: () => restarts.push(Date.now()),
  });
}, 30_000);
afterAll(async () => { await janus?.stop(); });

describe("JanusProcess", () => {
  it("listens on loopback only: its API and Admin API, nothing else", { timeout: 15_000 }, () => {
    const ports = [new URL(janus.endpoint.apiUrl).port, new URL(janus.endpoint.adminUrl).port];
    expect(listening(janus.pid!)).toEqual(ports.map((port) => `127.0.0.1:${port}`).sort());
  });

  it("refuses a request without its API secret, and a room created without its admin_key", { timeout: 15_000 }, async () => {
    const api = await janusSocket(janus.endpoint.apiUrl);
    try {
      expect(await api.send({ janus: "create" })).toMatchObject({ janus: "error", error: { code: 403 } });
      expect(await api.send({ janus: "create", apisecret: "not-the-secret" })).toMatchObject({ janus: "error", error: { code: 403 } });
      const apisecret = janus.endpoint.secrets.apiSecret;
      const session = await api.send({ janus: "create", apisecret });
      expect(session.janus).toBe("success");
      const handle = await api.send({ janus: "attach", plugin: "janus.plugin.videoroom", session_id: session.data.id, apisecret });
      const ask = (body: Record<string, unknown>) => api.send({ janus: "message", session_id: session.data.id, handle_id: handle.data.id, apisecret, body });
      expect((await ask({ request: "create", room: "lobby-voice" })).plugindata.data).toMatchObject({ error_code: 429, error: expect.stringMatching(/admin_key/) });
      expect((await ask({ request: "create", room: "lobby-voice", admin_key: "wrong" })).plugindata.data).toMatchObject({ error_code: 433 }); // unauthorized
      expect((await ask({ request: "create", room: "lobby-voice", admin_key: janus.endpoint.secrets.adminKey })).plugindata.data).toMatchObject({ videoroom: "created", room: "lobby-voice" });
      // Only the plugins voice needs are loaded.
      expect((await api.send({ janus: "attach", plugin: "janus.plugin.echotest", session_id: session.data.id, apisecret })).janus).toBe("error");
    } finally {
      api.close();
    }
  });

  it("starts Janus again after a SIGKILL, on the same address, and says so", { timeout: 30_000 }, async () => {
    const before = janus.pid!;
    process.kill(before, "SIGKILL");
    await waitFor(() => restarts.length > 0, 20_000, "Janus started again");
    expect(janus.pid).not.toBe(before);
    expect(await janusInfo(janus.endpoint.apiUrl, 2000)).toBe(true);
    // The same secrets still hold.
    const api = await janusSocket(janus.endpoint.apiUrl);
    try {
      expect((await api.send({ janus: "create", apisecret: janus.endpoint.secrets.apiSecret })).janus).toBe("success");
    } finally {
      api.close();
    }
  });
});
