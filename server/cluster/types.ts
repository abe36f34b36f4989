/** What the cluster knows about one node, as stored in the registry. */
export interface NodeInfo {
  nodeId: string;
  regionId: string;
  /** `host:port` clients and other nodes use to reach this node. */
  publicAddress: string;
  /** Colyseus process id: the IPC address for creating rooms on this node. */
  processId: string;
  load: NodeLoad;
  /** A draining node accepts no new seats. */
  draining: boolean;
  startedAt: number;
  /** Wall-clock time of the last heartbeat, ms since the epoch. */
  heartbeatAt: number;
}

export interface NodeLoad {
  ccu: number;
  rooms: number;
  eventLoopLagMs: number;
  /** True when any configured limit is reached: no new rooms are placed here. */
  overloaded: boolean;
}

/** Where a room lives. Keyed by room id, which is unique in the whole cluster. */
export interface DirectoryEntry {
  roomId: string;
  roomName: string;
  regionId: string;
  nodeId: string;
  publicAddress: string;
  ccu: number;
  maxClients: number | null;
  /** Room-defined listing data (title, booth count...), small and JSON-safe. */
  metadata?: Record<string, unknown>;
  createdAt: number;
  /**
   * The fencing token of the claim that wrote this entry: a decimal integer that every
   * claim and transfer of any room raises, so a higher one is a newer owner. Writes an
   * owner makes on the room's behalf carry it, and one older than the newest is refused
   * (a node that lost the room, partitioned or paused, cannot overwrite its successor).
   * Set by the directory; ignored in what is passed to claim().
   */
  token: string;
}

/** The teleop room a device answers to, and where that room drives it from. */
export interface DeviceOwner {
  roomId: string;
  regionId: string;
  nodeId: string;
  /** That node's device endpoint (ws://host:port/device): where the adapter must connect. */
  gatewayUrl: string;
  /** That node's certificate listener (wss://host:port/device), if it has one: where a certificate-mode adapter must connect. */
  certGatewayUrl?: string;
}

export type DirectoryChange =
  | { kind: "upsert"; entry: DirectoryEntry }
  | { kind: "remove"; roomId: string };
