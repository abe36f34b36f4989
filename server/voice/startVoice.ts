/**
 * The node's voice at start (RegionNode): by `voice.mode`, nothing; or a Janus, either its
 * own (JanusProcess) or an external one (`voice.janusUrl`: ExternalJanus, checked to be
 * as locked down as the node's own), with the backend rooms use for voice
 * (JanusVoiceBackend) and the one teleop rooms use for the machines' cameras
 * (JanusCameras), both reconnected whenever Janus is started again.
 *
 * - off: no voice.
 * - on: Janus must start (or the external one pass its checks), or the node does not
 *   (the error says how to install it, or what is wrong with it).
 * - auto: on when Janus is installed (or the external one answers); otherwise off, and
 *   the log says why: the one command that installs it, or what is wrong.
 */
import type { NodeConfig } from "../config.ts";
import type { Logger } from "../observability/logging.ts";
import type { NodeMetrics } from "../observability/metrics.ts";
import { JanusMissing, JanusProcess, type JanusEndpoint } from "./JanusProcess.ts";
import { externalJanus, watchExternalJanus } from "./ExternalJanus.ts";
import { JanusVoiceBackend } from "./JanusVoiceBackend.ts";
import { JanusCameras } from "./JanusCameras.ts";

/** The machines' cameras on the node's Janus, for teleop rooms. */
export interface NodeCameras {
  readonly backend: JanusCameras;
  /** One more each time Janus started again: every mountpoint was made again, and adapters need their new target. */
  readonly generation: number;
}

export interface NodeVoice {
  backend: JanusVoiceBackend;
  cameras: NodeCameras;
  /** Releases every voice room and stops Janus (or stops watching the external one). */
  stop(): Promise<void>;
}

export async function startVoice(config: NodeConfig, logger: Logger, metrics: NodeMetrics): Promise<NodeVoice | undefined> {
  const { mode, grantTtlMs } = config.voice;
  if (mode === "off") return undefined;
  let backend: JanusVoiceBackend | undefined;
  let cameras: { backend: JanusCameras; generation: number } | undefined;
  const janusDown = () => { backend?.janusDown(); cameras?.backend.janusDown(); };
  const janusBack = () => {
    metrics.janusRestarts.inc();
    void backend?.restarted().catch((error) => logger.error({ err: error }, "voice: could not reconnect to Janus after its restart"));
    void cameras?.backend.restarted().then(() => { cameras!.generation++; }, (error) => logger.error({ err: error }, "cameras: could not reconnect to Janus after its restart"));
  };
  let janus: { endpoint: JanusEndpoint; stop(): Promise<void> };
  try {
    janus = await startJanus(config, logger, { down: janusDown, back: janusBack, connected: () => backend?.health().up !== false && cameras?.backend.health().up !== false });
  } catch (error) {
    if (mode === "auto" && (error instanceof JanusMissing || config.voice.janusUrl)) {
      logger.warn(`voice is off: ${(error as Error).message}`);
      return undefined;
    }
    throw error;
  }
  try {
    backend = await JanusVoiceBackend.connect(janus.endpoint, { logger, grantTtlMs });
    cameras = { backend: await JanusCameras.connect(janus.endpoint, { logger, grantTtlMs }), generation: 0 };
  } catch (error) {
    await backend?.close().catch(() => {});
    await janus.stop();
    throw new Error(`voice: could not connect to Janus: ${(error as Error).message}`, { cause: error });
  }
  const connected = backend;
  const machineCameras = cameras;
  metrics.voiceHealth = () => connected.health();
  return {
    backend: connected,
    cameras: machineCameras,
    stop: async () => {
      await connected.close().catch((error) => logger.warn({ err: error }, "voice: closing the backend failed"));
      await machineCameras.backend.shutdown().catch((error) => logger.warn({ err: error }, "cameras: closing failed"));
      await janus.stop();
    },
  };
}

/** The node's own Janus, started and kept running; or the external one, checked and watched. */
async function startJanus(config: NodeConfig, logger: Logger, on: { down(): void; back(): void; connected(): boolean }): Promise<{ endpoint: JanusEndpoint; stop(): Promise<void> }> {
  const { host, rtpPortRange, mediaInterfaces, janusUrl, janusAdminUrl, janusSecretsFile } = config.voice;
  if (janusUrl) {
    const endpoint = await externalJanus({ apiUrl: janusUrl, adminUrl: janusAdminUrl, secretsFile: janusSecretsFile });
    logger.info({ apiUrl: janusUrl }, `voice on the external Janus at ${janusUrl}`);
    const stopWatching = watchExternalJanus(endpoint, {
      lost: () => { logger.warn(`voice: the external Janus at ${janusUrl} does not answer`); on.down(); },
      back: () => { logger.info(`voice: the external Janus at ${janusUrl} answers again; reconnecting`); on.back(); },
      connected: on.connected,
    });
    return { endpoint, stop: async () => stopWatching() };
  }
  const janus = await JanusProcess.start({ host, rtpPortRange, mediaInterfaces, serverName: config.nodeId, logger, onExit: on.down, onRestart: on.back });
  return { endpoint: janus.endpoint, stop: () => janus.stop() };
}
