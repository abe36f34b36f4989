/**
 * One client of the node's Janus (JanusVoiceBackend, JanusCameras): a session with a
 * handle on its plugin over the Janus API (with the API secret), and a connection to the
 * Admin API (client tokens), both opened again after Janus restarted.
 *
 * @example
 *   const link = await JanusLink.open(janus.endpoint, "janus.plugin.videoroom");
 *   await link.ask({ request: "create", room, admin_key, ... }, "a voice room");  // the plugin's data, or an Error
 *   await link.admin({ janus: "add_token", token, plugins: ["janus.plugin.videoroom"] });
 *   await link.reopen();   // after JanusProcess.onRestart
 *   await link.close();
 */
import Janode, { type JanodeConnection, type JanodeHandle, type JanodeSession } from "janode";
import type { JanusEndpoint } from "./JanusProcess.ts";
import { pluginData } from "./janusRequests.ts";

interface Connections {
  api: JanodeConnection;
  session: JanodeSession;
  handle: JanodeHandle;
  admin: JanodeConnection;
}

export class JanusLink {
  private live = true;
  private closing = false;

  private constructor(private readonly endpoint: JanusEndpoint, private readonly plugin: string, private connections: Connections) {
    this.watch(connections);
  }

  /** Down when the API connection drops by itself (Janus died, or the network between), or its session is gone. */
  private watch(connections: Connections): void {
    const lost = () => { if (this.connections === connections && !this.closing) this.live = false; };
    connections.api.once(Janode.EVENT.CONNECTION_CLOSED!, lost);
    connections.api.once(Janode.EVENT.CONNECTION_ERROR!, lost);
    connections.session.once(Janode.EVENT.SESSION_DESTROYED!, lost);
  }

  static async open(endpoint: JanusEndpoint, plugin: string): Promise<JanusLink> {
    Janode.Logger.setLevel("none");
    return new JanusLink(endpoint, plugin, await JanusLink.connect(endpoint, plugin));
  }

  private static async connect(endpoint: JanusEndpoint, plugin: string): Promise<Connections> {
    const api = await Janode.connect({ address: { url: endpoint.apiUrl, apisecret: endpoint.secrets.apiSecret }, max_retries: 1, retry_time_secs: 1 });
    try {
      const session = await api.create(15);
      const handle = await session.attach({ id: plugin });
      const admin = await Janode.connect({ address: { url: endpoint.adminUrl, apisecret: endpoint.secrets.adminSecret }, is_admin: true, max_retries: 1, retry_time_secs: 1 });
      return { api, session, handle, admin };
    } catch (error) {
      await api.close().catch(() => {});
      throw error;
    }
  }

  /** A request to the plugin: its data, or an Error naming `what`. */
  async ask(body: Record<string, unknown>, what: string): Promise<any> {
    return pluginData(await this.connections.handle.message(body), what);
  }

  /** A request to the Admin API, answered as Janus answers it. */
  admin(body: Record<string, unknown>): Promise<any> {
    return this.connections.admin.sendRequest(body);
  }

  /** The Admin API connection (for what walks Janus' sessions: endHandlesOfToken). */
  get adminConnection(): JanodeConnection {
    return this.connections.admin;
  }

  /** False from Janus' death (janusDown) until reopen() reconnects. */
  get up(): boolean {
    return this.live;
  }

  /** Janus died: down until reopen(). */
  janusDown(): void {
    this.live = false;
  }

  /** Janus started again: its sessions are gone, so both connections are opened again (up once they are). */
  async reopen(): Promise<void> {
    await Promise.allSettled([this.connections.api.close(), this.connections.admin.close()]);
    this.live = false;
    this.connections = await JanusLink.connect(this.endpoint, this.plugin);
    this.watch(this.connections);
    this.live = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    const { session, api, admin } = this.connections;
    await Promise.allSettled([session.destroy(), api.close(), admin.close()]);
  }
}
