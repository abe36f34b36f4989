/**
 * The part of janode (Meetecho's Janus adapter, plain JavaScript) this project uses, typed.
 * Requests and answers are Janus' own JSON (janus.plugin.videoroom's and janus.plugin.streaming's APIs).
 */
declare module "janode" {
  export interface JanodeHandle {
    readonly id: number;
    /** A plugin request; resolves with Janus' answer (`plugindata.data` for a synchronous one). */
    message(body: Record<string, unknown>, jsep?: unknown): Promise<any>;
    detach(): Promise<void>;
    on(event: string, listener: (...args: any[]) => void): this;
  }
  export interface JanodeSession {
    readonly id: number;
    attach<H extends JanodeHandle = JanodeHandle>(plugin: { id: string; Handle?: unknown }): Promise<H>;
    destroy(): Promise<void>;
    once(event: string, listener: (...args: any[]) => void): this;
  }
  export interface JanodeConnection {
    /** A session, kept alive every `kaIntervalS`. */
    create(kaIntervalS?: number): Promise<JanodeSession>;
    /** A core or Admin API request (with the connection's secret added). */
    sendRequest(request: Record<string, unknown>): Promise<any>;
    close(): Promise<void>;
    once(event: string, listener: (...args: any[]) => void): this;
  }
  export interface JanodeConfig {
    address: { url: string; apisecret?: string; token?: string };
    is_admin?: boolean;
    retry_time_secs?: number;
    max_retries?: number;
  }
  const Janode: {
    connect(config: JanodeConfig): Promise<JanodeConnection>;
    Logger: { setLevel(level: "none" | "error" | "warning" | "info" | "verbose" | "debug"): void };
    EVENT: Record<string, string>;
  };
  export default Janode;
}

declare module "janode/plugins/videoroom" {
  import type { JanodeHandle } from "janode";
  /** VideoRoom's handle: its requests answered as their events (rejected with the plugin's error). */
  export interface VideoRoomHandle extends JanodeHandle {
    joinPublisher(params: { room: string; feed?: string; display?: string; token?: string }): Promise<{ room: string; feed: string; publisher_id?: string }>;
  }
  const VideoRoomPlugin: { id: string; Handle: unknown };
  export default VideoRoomPlugin;
}

declare module "janode/plugins/streaming" {
  import type { JanodeHandle } from "janode";
  /** Streaming's handle, as a viewer uses it: its requests answered as their events (rejected with the plugin's error). */
  export interface StreamingHandle extends JanodeHandle {
    /** Janus' offer comes back as `jsep`. */
    watch(params: { id: string; pin?: string }): Promise<{ status: string; id?: string; jsep?: { type: "offer"; sdp: string } }>;
    start(params: { jsep: { type: "answer"; sdp: string } }): Promise<{ status: string }>;
  }
  const StreamingPlugin: { id: string; Handle: unknown };
  export default StreamingPlugin;
}
