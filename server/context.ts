/**
 * The services of the region node running in this process, for rooms to reach.
 *
 * Colyseus constructs rooms itself and keeps one matchmaker per process, so a room
 * cannot be handed its node; RegionNode.start() sets this once and stop() clears it.
 */
import { ServerError } from "@colyseus/core";
import { ErrorCode } from "../proto/index.ts";
import type { Logger } from "./observability/logging.ts";
import type { NodeMetrics } from "./observability/metrics.ts";
import type { NodeRegistry } from "./cluster/NodeRegistry.ts";
import type { RoomDirectory } from "./cluster/RoomDirectory.ts";
import type { NodeConfig } from "./config.ts";
import type { DeviceGateway } from "./gateway/DeviceGateway.ts";
import type { DeviceCredentials } from "./auth/DeviceCredentials.ts";
import type { AuditSink } from "./audit/AuditSink.ts";
import type { SnapshotStore } from "./handoff/SnapshotStore.ts";
import type { VoiceBackend } from "./voice/VoiceBackend.ts";
import type { NodeCameras } from "./voice/startVoice.ts";

export interface NodeContext {
  config: NodeConfig;
  nodeId: string;
  regionId: string;
  publicAddress: string;
  logger: Logger;
  metrics: NodeMetrics;
  registry: NodeRegistry;
  directory: RoomDirectory;
  /** Where edge adapters connect; rooms find their devices' links here. */
  gateway: DeviceGateway;
  /** This node's device endpoint, ws://host:port/device (wss:// with TLS). */
  gatewayUrl: string;
  /** The certificate listener's endpoint, wss://host:port/device, when the node runs one (gateway.deviceCaFile). */
  certGatewayUrl?: string;
  /** Device enrolment and credentials. */
  devices: DeviceCredentials;
  /** The cluster's key for claims that travel through clients in room options (server/auth/keys.ts). */
  roomOptionsKey: Buffer;
  /** Rooms' snapshots for failover (fenced by their tokens); undefined in embedded mode. */
  snapshots?: SnapshotStore;
  /** The audit log of a teleop room (Redis Streams, or in memory in embedded mode). */
  audit(roomId: string): AuditSink;
  /** True once SIGTERM (or stop()) began draining this node. */
  isDraining(): boolean;
  /** False while this node's claims are not certainly its own (RoomDirectory.validUntil): its rooms take no inputs. */
  ownsItsRooms(): boolean;
  /** The rooms' voice (server/voice), when the node runs it (`voice.mode`). */
  voice?: VoiceBackend;
  /** The machines' cameras on the same Janus, for teleop rooms. */
  cameras?: NodeCameras;
}

let current: NodeContext | undefined;

export function setNodeContext(context: NodeContext | undefined) { current = context; }

export function nodeContext(): NodeContext {
  if (!current) throw new ServerError(ErrorCode.INTERNAL, "region node not started in this process");
  return current;
}
