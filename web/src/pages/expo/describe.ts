/** Words for the expo page: errors, channels, moderation actions, places in the hall. */
import { TsunagiError } from "../../../../common/TsunagiError.ts";
import { ErrorCode, errorCodeName, tsunagi } from "../../../../proto/index.ts";

/** Why something failed, as the page shows it: the code's name and the server's message. */
export function describeError(error: unknown): { code?: number; codeName: string; message: string; retryable: boolean } {
  if (error instanceof TsunagiError) {
    // A kicked visitor may join again; a banned one may not.
    const retryable = error.retryable || error.code === ErrorCode.KICKED || error.code === ErrorCode.REGION_UNAVAILABLE;
    return { code: error.code, codeName: error.codeName, message: error.message, retryable };
  }
  const code = typeof (error as { code?: unknown })?.code === "number" ? (error as { code: number }).code : undefined;
  return { code, codeName: code === undefined ? "ERROR" : errorCodeName(code), message: (error as Error)?.message ?? String(error), retryable: true };
}

/** A headline for a join or session failure. */
export function headlineOf(code: number | undefined, hallId: string): string {
  switch (code) {
    case ErrorCode.UNKNOWN_ROOM: return `There is no hall "${hallId}"`;
    case ErrorCode.FORBIDDEN: return "Your token does not admit you to this hall";
    case ErrorCode.TOKEN_EXPIRED: return "Your token has expired";
    case ErrorCode.TOKEN_INVALID: case ErrorCode.TOKEN_MISSING: return "Your token is not valid here";
    case ErrorCode.BANNED: return "A host banned you from this hall";
    case ErrorCode.KICKED: return "A host removed you from the hall";
    case ErrorCode.HALL_CLOSED: return "The hall is closed";
    case ErrorCode.ROOM_FULL: return "The hall is full";
    default: return "Could not stay in the hall";
  }
}

const Kind = tsunagi.v1.ChatChannel.Kind;

export function channelLabel(channel: tsunagi.v1.IChatChannel | null | undefined, names: (id: number) => string): string {
  switch (channel?.kind) {
    case Kind.HALL: return "hall";
    case Kind.BOOTH: return `booth ${channel.target}`;
    case Kind.DIRECT: return `direct ${names(Number(channel.target))}`;
    default: return "?";
  }
}

const Action = tsunagi.v1.Moderate.Action;

export function moderationText(notice: tsunagi.v1.IModerationNotice): string {
  const reason = notice.reason ? `: ${notice.reason}` : "";
  switch (notice.action) {
    case Action.MUTE: return `A host muted you${notice.untilMs && notice.untilMs > 1 ? ` until ${new Date(notice.untilMs).toLocaleTimeString()}` : ""}${reason}`;
    case Action.UNMUTE: return "A host unmuted you";
    case Action.KICK: return `A host removed you from the hall${reason}`;
    case Action.BAN: return `A host banned you from the hall${reason}`;
    default: return `Moderation${reason}`;
  }
}

/** A place's display name: a booth's or an area's, else its id. */
export function placeName(hall: tsunagi.v1.IExpoHall, id: string): string {
  return hall.booths?.find((b) => b.boothId === id)?.name || hall.areas?.find((a) => a.areaId === id)?.name || id;
}
