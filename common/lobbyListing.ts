/**
 * One room as the `lobby` room lists it (its `rooms` and `+` messages): Colyseus'
 * listing fields, plus the region, node and address that host the room. The lobby
 * (rooms/lobby) sends it; the console (web/) and any client read it.
 */
export interface LobbyListing {
  roomId: string;
  name: string;
  regionId: string;
  nodeId: string;
  publicAddress: string;
  clients: number;
  maxClients: number | null;
  metadata?: Record<string, unknown>;
}
