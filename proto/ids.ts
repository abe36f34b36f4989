/**
 * The id patterns of the contract, each written once: every side (gateway, rooms, SDK,
 * adapter, CLIs) checks ids with these, so a device id one side accepts is never refused
 * by another.
 *
 * @example
 *   if (!DEVICE_ID_PATTERN.test(deviceId)) throw new TypeError(`device id must match ${DEVICE_ID_TEXT}`);
 */

/** An enrolled device's id (DeviceHello.device_id, ControlCommand.device_id, …). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
/** DEVICE_ID_PATTERN as people read it, for error messages and usage text. */
export const DEVICE_ID_TEXT = "[A-Za-z0-9_.-]{1,64}";

/** An axis's name in a DeviceProfile (AxisProfile.name, the HAL component id). */
export const AXIS_NAME_PATTERN = DEVICE_ID_PATTERN;

/** A device action's name in a DeviceProfile (ActionSpec.name): "arm", "takeoff". */
export const ACTION_NAME_PATTERN = /^[a-z0-9-]{1,32}$/;

/** A region id (`jp-tokyo`): node config, placement, the admin's handoff target. */
export const REGION_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A node id (`tokyo-1`): node config, the registry, the admin's drain target. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,100}$/;

/** A room id, a room type's matchmaking name, and the ids inside a hall layout (zones,
 *  booths, areas): they appear in URLs and Redis keys. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * A room's full id, what joinById and reconnect take and what `room.roomId` reads: each room
 * type has its own namespace, so the id is the type, `__` and the name: `teleop__site-7`. A
 * session room named `site-7` and the teleop room `site-7` are two rooms, and a join by one
 * never lands in the other. Expo rooms are the exception: they are their halls' zones,
 * opened by the node alone, and their ids are the hall's (`expo-demo`, `expo-demo--east`);
 * such a bare id may not contain `__` (bareIdProblem), so it never equals another type's.
 * (Colyseus' transports take only `[A-Za-z0-9_-]` in a room id, so the separator is from
 * that alphabet; a type name never contains it, so the first `__` ends the type.)
 */
export function roomIdOf(roomType: string, name: string): string {
  return BARE_ID_ROOM_TYPES.has(roomType) ? name : `${roomType}${ROOM_TYPE_SEPARATOR}${name}`;
}
/** Between a room's type and its name in its id. */
export const ROOM_TYPE_SEPARATOR = "__";
/** The types whose rooms' ids are their bare names (see roomIdOf). */
const BARE_ID_ROOM_TYPES: ReadonlySet<string> = new Set(["expo"]);
/** Why `name` cannot be a room of `roomType` (a bare id with the separator), or undefined. */
export function bareIdProblem(roomType: string, name: string): string | undefined {
  return BARE_ID_ROOM_TYPES.has(roomType) && name.includes(ROOM_TYPE_SEPARATOR)
    ? `a ${roomType} room's id may not contain "${ROOM_TYPE_SEPARATOR}" (other room types' ids do)` : undefined;
}
/** A full room id (roomIdOf): a type, the separator and a name, or an expo room's bare id. */
export const FULL_ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,140}$/;

/** An expo hall's id; a zone's room id is the hall id and a suffix, so it is shorter than a room id. */
export const HALL_ID_PATTERN = /^[A-Za-z0-9_-]{1,40}$/;

/** Whether `value` is a string that is a valid device id. */
export function isDeviceId(value: unknown): value is string {
  return typeof value === "string" && DEVICE_ID_PATTERN.test(value);
}
