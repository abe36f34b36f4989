/**
 * Chat policy of the expo hall: what may be said (moderation hooks, run by moderate()
 * before a message is delivered). How fast a visitor may talk is a TokenBucket
 * (common/TokenBucket.ts).
 *
 * Moderation fails closed: a hook that throws, answers nonsense or does not answer in
 * time counts as a reject with reason "moderation unavailable", so an outage of an
 * external moderation service silences chat rather than letting everything through.
 *
 * @example
 *   const bucket = new TokenBucket(1, 5);              // 1 message/s, bursts of 5
 *   if (!bucket.take()) return refuse(RATE_LIMITED, bucket.retryAfterMs());
 *   const verdict = await moderate([wordFilter(bannedWords, "mask"), serviceHook], draft, 500);
 *   if (verdict.action === "reject") return refuse(MODERATED, verdict.reason);
 *   deliver(verdict.action === "replace" ? verdict.text : draft.text);
 */

export type ChatChannelKind = "hall" | "booth" | "direct";

/** A chat message on its way to delivery: what moderation hooks judge. */
export interface ChatDraft {
  /** Where it goes: the hall, a booth (target: booth id) or one visitor (target: visitor id). */
  channel: { kind: ChatChannelKind; target: string };
  text: string;
  /** The sender, from its token: subject, display name and role. */
  from: { visitorId: number; subject: string; name: string; role: string };
}

export type ModerationVerdict = { action: "allow" } | { action: "replace"; text: string } | { action: "reject"; reason: string };

/** Decides about a chat message before it is delivered. May be async (an external moderation service); the room bounds the wait. */
export type ModerationHook = (draft: ChatDraft) => ModerationVerdict | Promise<ModerationVerdict>;

/** The reason of the reject that stands in for a hook that threw, answered nonsense or timed out. */
export const MODERATION_UNAVAILABLE = "moderation unavailable";

/** Characters that make up words: letters, digits, and the combining marks that belong to them. */
const WORD_CHAR = String.raw`[\p{L}\p{N}\p{M}]`;

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

/**
 * A built-in hook: words matched case-insensitively as whole words (Unicode-aware: a
 * match may not touch a letter, digit or combining mark on either side, in any script;
 * so "ass" does not match in "class", nor "ber" in "über"). Mode "mask" replaces each
 * letter, digit and mark of a match with "*" (one per code point; spaces and
 * punctuation inside a listed phrase stay); "reject" refuses, naming the first listed
 * word found in the text, as the text spells it. An empty list allows everything;
 * empty and blank entries are ignored. A message with nothing to mask is allowed, not
 * replaced. Answers synchronously.
 *
 * Scripts written without spaces (Japanese, Chinese) have no word boundaries to find:
 * a listed Japanese word matches only where it stands apart from other letters (for
 * example between punctuation). Screen such text with a dedicated hook.
 */
export function wordFilter(words: readonly string[], mode: "mask" | "reject"): ModerationHook {
  if (mode !== "mask" && mode !== "reject") throw new TypeError(`wordFilter: mode must be "mask" or "reject", got ${String(mode)}`);
  const entries = [...new Set(words.map((word) => word.trim()).filter((word) => word.length > 0))]
    // Longest first, so that of two entries starting at the same place the longer wins.
    .sort((a, b) => b.length - a.length);
  if (entries.length === 0) return () => ({ action: "allow" });

  const source = `(?<!${WORD_CHAR})(?:${entries.map(escapeRegExp).join("|")})(?!${WORD_CHAR})`;
  if (mode === "reject") {
    const first = new RegExp(source, "iu"); // not global: exec always starts at 0
    return (draft) => {
      const match = first.exec(draft.text);
      return match ? { action: "reject", reason: `contains the blocked word "${match[0]}"` } : { action: "allow" };
    };
  }
  const all = new RegExp(source, "giu");
  const maskable = new RegExp(WORD_CHAR, "gu");
  return (draft) => {
    const text = draft.text.replace(all, (match) => match.replace(maskable, "*"));
    return text === draft.text ? { action: "allow" } : { action: "replace", text };
  };
}

/** A failure of one hook, as reported to moderate()'s `onHookFailure`. */
export interface ModerationHookFailure {
  /** The hook's index in `hooks`. */
  index: number;
  kind: "threw" | "timeout" | "malformed";
  /** The thrown error, or an Error describing the timeout or the malformed verdict. */
  error: unknown;
}

const TIMED_OUT: unique symbol = Symbol("timed out");

/** The setTimeout maximum; a longer delay would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function isVerdict(value: unknown): value is ModerationVerdict {
  if (typeof value !== "object" || value === null) return false;
  const verdict = value as Record<string, unknown>;
  switch (verdict.action) {
    case "allow": return true;
    case "replace": return typeof verdict.text === "string";
    case "reject": return typeof verdict.reason === "string";
    default: return false;
  }
}

/** Waits for `answer` at most `timeoutMs`; the timer is cleared as soon as it settles. */
function withTimeout<V>(answer: PromiseLike<V>, timeoutMs: number): Promise<V | typeof TIMED_OUT> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs);
    // Handlers stay attached after a timeout, so a late rejection is not "unhandled".
    Promise.resolve(answer).then(
      (value) => { clearTimeout(timer); resolve(value); },
      (error: unknown) => { clearTimeout(timer); reject(error); },
    );
  });
}

/**
 * Runs `hooks` in order: a replace feeds the next hook the new text; the first reject
 * wins (later hooks are not called); a hook that throws (or rejects), answers something
 * that is not a verdict, or does not answer within `timeoutMs` counts as reject with
 * reason "moderation unavailable" (fail closed). The timeout is per hook, so the worst
 * case is `hooks.length × timeoutMs`; a synchronous hook cannot be interrupted. The
 * timer is cleared as soon as a hook answers.
 *
 * Each hook gets its own shallow copy of `draft` carrying the current text; `draft`
 * itself is not changed. The result is "replace" with the final text if the hooks
 * changed the text, else "allow".
 *
 * @param onHookFailure told about each hook that threw, timed out or answered nonsense
 *   (for logs and metrics); if it throws, that is ignored.
 * @throws RangeError (as a rejected promise) if `timeoutMs` is not a number from 0 to 2^31 - 1.
 */
export async function moderate(
  hooks: readonly ModerationHook[],
  draft: ChatDraft,
  timeoutMs: number,
  onHookFailure?: (failure: ModerationHookFailure) => void,
): Promise<ModerationVerdict> {
  if (typeof timeoutMs !== "number" || !(timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
    throw new RangeError(`moderate: timeoutMs must be a number from 0 to ${MAX_TIMEOUT_MS}, got ${String(timeoutMs)}`);
  }
  const fail = (failure: ModerationHookFailure): ModerationVerdict => {
    try {
      onHookFailure?.(failure);
    } catch {
      // a broken reporter must not change the verdict
    }
    return { action: "reject", reason: MODERATION_UNAVAILABLE };
  };

  let text = draft.text;
  for (let index = 0; index < hooks.length; index++) {
    let answer: unknown;
    try {
      answer = hooks[index]({ ...draft, text });
      if (typeof (answer as PromiseLike<unknown> | null)?.then === "function") {
        answer = await withTimeout(answer as PromiseLike<unknown>, timeoutMs);
      }
    } catch (error) {
      return fail({ index, kind: "threw", error });
    }
    if (answer === TIMED_OUT) {
      return fail({ index, kind: "timeout", error: new Error(`moderation hook ${index} did not answer within ${timeoutMs} ms`) });
    }
    if (!isVerdict(answer)) {
      return fail({ index, kind: "malformed", error: new Error(`moderation hook ${index} answered ${describe(answer)}, not a verdict`) });
    }
    if (answer.action === "reject") return { action: "reject", reason: answer.reason };
    if (answer.action === "replace") text = answer.text;
  }
  return text === draft.text ? { action: "allow" } : { action: "replace", text };
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
