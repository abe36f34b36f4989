/**
 * The room types a node serves, as modules for RegionNode.start(): their classes by
 * matchmaking name, the HTTP routes they answer, and what they do once the node listens.
 * Only server/main.ts (and tools on top: demo, bench, tests) import this list.
 *
 * @example
 *   const node = await RegionNode.start(config, roomModules);
 */
import type { RoomModule } from "../server/RoomModule.ts";
import { LobbyRoom } from "./lobby/LobbyRoom.ts";
import { SessionRoom } from "./session/SessionRoom.ts";
import { TeleopRoom } from "./teleop/TeleopRoom.ts";
import { ExpoRoom } from "./expo/ExpoRoom.ts";
import { HALL_ADMIN_ROUTES, handleExpoRequest, openHall } from "./expo/HallAdmin.ts";
import { loadHallLayout } from "./expo/HallLayout.ts";

export const lobbyModule: RoomModule = { name: "lobby", rooms: { lobby: LobbyRoom } };

export const sessionModule: RoomModule = { name: "session", rooms: { session: SessionRoom } };

export const teleopModule: RoomModule = { name: "teleop", rooms: { teleop: TeleopRoom } };

export const expoModule: RoomModule = {
  name: "expo",
  rooms: { expo: ExpoRoom },
  http: { routes: HALL_ADMIN_ROUTES, handle: handleExpoRequest },
  // `--expo-hall-file`: the hall a node opens at start.
  async started(context) {
    const file = context.config.expo.hallFile;
    if (file) await openHall(context, loadHallLayout(file), file);
  },
};

/** Every room type, in the order the node defines them. */
export const roomModules: readonly RoomModule[] = [lobbyModule, sessionModule, teleopModule, expoModule];
