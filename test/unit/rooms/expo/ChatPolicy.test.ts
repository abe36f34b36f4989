/**
 * ChatPolicy: the word filter's whole-word matching in several scripts, and moderate()'s
 * ordering, chaining and fail-closed timeouts (fake timers, and once a short real one).
 */
import { describe, it, expect, vi, afterEach } from "vitest";
import {
  wordFilter, moderate, MODERATION_UNAVAILABLE,
  type ChatDraft, type ModerationHook, type ModerationVerdict, type ModerationHookFailure,
} from "../../../../rooms/expo/ChatPolicy.ts";

function draft(text: string): ChatDraft {
  return { channel: { kind: "hall", target: "" }, text, from: { visitorId: 7, subject: "user-7", name: "Aiko", role: "visitor" } };
}

/**
 * What `promise` has settled to by the next turn of the event loop, or "pending". Lets a
 * fake-timer test look without awaiting a promise that might never settle. (setImmediate
 * is not faked here.)
 */
function settledBy<V>(promise: Promise<V>): Promise<V | "pending"> {
  return Promise.race([promise, new Promise<"pending">((resolve) => setImmediate(() => resolve("pending")))]);
}

const unavailable: ModerationVerdict = { action: "reject", reason: MODERATION_UNAVAILABLE };

/** Runs the word filter on one text (it answers synchronously). */
function filter(words: string[], mode: "mask" | "reject", text: string): ModerationVerdict {
  const verdict = wordFilter(words, mode)(draft(text));
  expect(verdict).not.toBeInstanceOf(Promise);
  return verdict as ModerationVerdict;
}

describe("wordFilter", () => {
  it("masks whole words only, case-insensitively: 'ass' leaves 'class' and 'assignment' alone", () => {
    expect(filter(["ass"], "mask", "Class assignment: ASS! you ass.")).toEqual({ action: "replace", text: "Class assignment: ***! you ***." });
    expect(filter(["ass"], "mask", "classy bass passes")).toEqual({ action: "allow" });
    expect(filter(["darn"], "mask", "DaRn it, darn")).toEqual({ action: "replace", text: "**** it, ****" });
    expect(filter(["ass"], "mask", "ass")).toEqual({ action: "replace", text: "***" });
  });

  it("treats letters and digits of every script as word characters (not \\b's ASCII idea)", () => {
    // \b would see a boundary after ü and é: these must not match
    expect(filter(["ber"], "mask", "über alles")).toEqual({ action: "allow" });
    expect(filter(["caf"], "mask", "un café")).toEqual({ action: "allow" });
    expect(filter(["ass"], "mask", "ass1 1ass passé")).toEqual({ action: "allow" });
    // but punctuation, underscores and spaces are boundaries
    expect(filter(["ass"], "mask", "_ass_ (ass) ass—ass")).toEqual({ action: "replace", text: "_***_ (***) ***—***" });
    // non-ASCII words, case-insensitively
    expect(filter(["ÜBEL"], "mask", "Das ist übel.")).toEqual({ action: "replace", text: "Das ist ****." });
  });

  it("passes Japanese text through unchanged when nothing matches; Japanese letters are word characters", () => {
    const text = "こんにちは、世界！ブースAで会いましょう。";
    expect(filter(["ass", "バカ"], "mask", text)).toEqual({ action: "allow" });
    expect(filter(["ass", "バカ"], "reject", text)).toEqual({ action: "allow" });
    // a listed word run into Japanese letters is not a whole word
    expect(filter(["ass"], "mask", "assです")).toEqual({ action: "allow" });
    expect(filter(["バカ"], "mask", "バカンスに行く")).toEqual({ action: "allow" });
    // standing apart, it is
    expect(filter(["ass"], "mask", "これは ass。")).toEqual({ action: "replace", text: "これは ***。" });
    expect(filter(["バカ"], "mask", "「バカ」と言った")).toEqual({ action: "replace", text: "「**」と言った" });
  });

  it("masks one star per code point, and leaves a phrase's spaces and punctuation", () => {
    expect(filter(["𠮷野"], "mask", "𠮷野 です")).toEqual({ action: "replace", text: "** です" });
    expect(filter(["bad word", "c++"], "mask", "a bad word in c++!")).toEqual({ action: "replace", text: "a *** **** in *++!" });
    // the longer entry wins where both start
    expect(filter(["bad", "bad word"], "mask", "bad word, bad")).toEqual({ action: "replace", text: "*** ****, ***" });
  });

  it("takes words literally: regular-expression characters in a word match only themselves", () => {
    expect(filter(["a.b"], "mask", "axb")).toEqual({ action: "allow" });
    expect(filter(["a.b"], "mask", "a.b")).toEqual({ action: "replace", text: "*.*" });
    expect(filter(["(oops", "x|y", "[z]"], "mask", "x y z")).toEqual({ action: "allow" });
    expect(filter(["(oops"], "reject", "well (oops")).toEqual({ action: "reject", reason: 'contains the blocked word "(oops"' });
  });

  it("reject names the first word found in the text, as written there", () => {
    expect(filter(["darn", "heck"], "reject", "Oh HECK, darn it")).toEqual({ action: "reject", reason: 'contains the blocked word "HECK"' });
    expect(filter(["darn", "heck"], "reject", "darn, heck")).toEqual({ action: "reject", reason: 'contains the blocked word "darn"' });
    expect(filter(["ass"], "reject", "first class")).toEqual({ action: "allow" });
    // the hook holds no state between calls
    const hook = wordFilter(["heck"], "reject");
    expect(hook(draft("heck"))).toEqual({ action: "reject", reason: 'contains the blocked word "heck"' });
    expect(hook(draft("heck"))).toEqual({ action: "reject", reason: 'contains the blocked word "heck"' });
  });

  it("an empty list (or only blank entries) allows everything", () => {
    for (const words of [[], [""], ["  ", ""]]) {
      expect(filter(words, "mask", "anything at all, ass")).toEqual({ action: "allow" });
      expect(filter(words, "reject", "anything at all, ass")).toEqual({ action: "allow" });
    }
    expect(filter([" ass "], "mask", "you ass")).toEqual({ action: "replace", text: "you ***" });
  });
});

describe("moderate", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A hook that records the text it saw and answers `verdict`. */
  function recording(name: string, seen: string[], verdict: (text: string) => ModerationVerdict | Promise<ModerationVerdict>): ModerationHook {
    return (d) => { seen.push(`${name}:${d.text}`); return verdict(d.text); };
  }

  it("runs the hooks in order; a replace feeds the next hook the new text", async () => {
    const seen: string[] = [];
    const original = draft("hello");
    const verdict = await moderate([
      recording("a", seen, (text) => ({ action: "replace", text: text.toUpperCase() })),
      recording("b", seen, async () => ({ action: "allow" })),
      recording("c", seen, async (text) => ({ action: "replace", text: `${text}!` })),
      recording("d", seen, () => ({ action: "allow" })),
    ], original, 1000);
    expect(verdict).toEqual({ action: "replace", text: "HELLO!" });
    expect(seen).toEqual(["a:hello", "b:HELLO", "c:HELLO", "d:HELLO!"]);
    expect(original.text).toBe("hello");
  });

  it("allows when every hook allows, when there are no hooks, and when the replacements changed nothing", async () => {
    expect(await moderate([() => ({ action: "allow" }), async () => ({ action: "allow" })], draft("hi"), 1000)).toEqual({ action: "allow" });
    expect(await moderate([], draft("hi"), 1000)).toEqual({ action: "allow" });
    expect(await moderate([() => ({ action: "replace", text: "X" }), () => ({ action: "replace", text: "hi" })], draft("hi"), 1000)).toEqual({ action: "allow" });
  });

  it("the first reject wins and later hooks are not asked, even after a replace", async () => {
    const seen: string[] = [];
    const verdict = await moderate([
      recording("a", seen, () => ({ action: "replace", text: "masked" })),
      recording("b", seen, async () => ({ action: "reject", reason: "spam" })),
      recording("c", seen, () => ({ action: "reject", reason: "later" })),
    ], draft("buy now"), 1000);
    expect(verdict).toEqual({ action: "reject", reason: "spam" });
    expect(seen).toEqual(["a:buy now", "b:masked"]);
  });

  it("chains with the built-in word filter", async () => {
    const verdict = await moderate([wordFilter(["darn"], "mask"), recording("x", [], (text) => ({ action: "replace", text: `[${text}]` }))], draft("darn it"), 1000);
    expect(verdict).toEqual({ action: "replace", text: "[**** it]" });
    // the second filter judges the masked text, not the original
    expect(await moderate([wordFilter(["darn"], "mask"), wordFilter(["****"], "reject")], draft("darn"), 1000)).toEqual({ action: "reject", reason: 'contains the blocked word "****"' });
    expect(await moderate([wordFilter(["darn"], "mask"), wordFilter(["darn"], "reject")], draft("darn"), 1000)).toEqual({ action: "replace", text: "****" });
  });

  it("fails closed: a hook that throws or rejects counts as reject 'moderation unavailable'", async () => {
    const later = vi.fn(() => ({ action: "allow" }) as const);
    const failures: ModerationHookFailure[] = [];
    const boom = new Error("service down");
    expect(await moderate([() => ({ action: "allow" }), () => { throw boom; }, later], draft("x"), 1000, (f) => failures.push(f))).toEqual(unavailable);
    expect(await moderate([async () => { throw boom; }, later], draft("x"), 1000, (f) => failures.push(f))).toEqual(unavailable);
    expect(later).not.toHaveBeenCalled();
    expect(failures).toEqual([{ index: 1, kind: "threw", error: boom }, { index: 0, kind: "threw", error: boom }]);
    expect(MODERATION_UNAVAILABLE).toBe("moderation unavailable");
  });

  it("fails closed on an answer that is not a verdict", async () => {
    const failures: ModerationHookFailure[] = [];
    const junk = [undefined, null, "allow", {}, { action: "nope" }, { action: "replace" }, { action: "replace", text: 5 }, { action: "reject" }];
    for (const answer of junk) {
      const hook = (() => answer) as unknown as ModerationHook;
      expect(await moderate([hook], draft("x"), 1000, (f) => failures.push(f)), JSON.stringify(answer)).toEqual(unavailable);
      expect(await moderate([async () => hook(draft("x"))], draft("x"), 1000), JSON.stringify(answer)).toEqual(unavailable);
    }
    expect(failures.map((f) => f.kind)).toEqual(junk.map(() => "malformed"));
  });

  it("a reporter that throws does not change the verdict", async () => {
    const verdict = await moderate([() => { throw new Error("bug"); }], draft("x"), 1000, () => { throw new Error("reporter bug"); });
    expect(verdict).toEqual(unavailable);
  });

  it("a hook that never answers is a reject after timeoutMs, not before; its timer is gone after", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const later = vi.fn(() => ({ action: "allow" }) as const);
    const failures: ModerationHookFailure[] = [];
    const pending = moderate([() => ({ action: "replace", text: "y" }), () => new Promise<never>(() => {}), later], draft("x"), 30, (f) => failures.push(f));
    await vi.advanceTimersByTimeAsync(29);
    expect(await settledBy(pending)).toBe("pending");
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settledBy(pending)).toEqual(unavailable);
    expect(later).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ index: 1, kind: "timeout" });
    expect(String(failures[0].error)).toMatch(/did not answer within 30 ms/);
  });

  it("clears the timer as soon as a hook answers, or fails", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const slowAllow: ModerationHook = () => new Promise((resolve) => setTimeout(() => resolve({ action: "allow" }), 10));
    const slowReject: ModerationHook = () => new Promise((resolve) => setTimeout(() => resolve({ action: "reject", reason: "no" }), 10));
    const slowThrow: ModerationHook = () => new Promise((_, reject) => setTimeout(() => reject(new Error("down")), 10));

    const first = moderate([slowAllow, slowAllow], draft("x"), 60_000);
    await vi.advanceTimersByTimeAsync(10);
    expect(vi.getTimerCount()).toBe(2); // the second hook's answer timer and its moderation timer
    await vi.advanceTimersByTimeAsync(10);
    expect(await settledBy(first)).toEqual({ action: "allow" });
    expect(vi.getTimerCount()).toBe(0);

    for (const [hook, expected] of [[slowReject, { action: "reject", reason: "no" }], [slowThrow, unavailable]] as const) {
      const pending = moderate([hook], draft("x"), 60_000);
      await vi.advanceTimersByTimeAsync(10);
      expect(await settledBy(pending)).toEqual(expected);
      expect(vi.getTimerCount()).toBe(0);
    }
  });

  it("an answer after the timeout changes nothing, and a late rejection is not left unhandled", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const lateReject: ModerationHook = () => new Promise((_, reject) => setTimeout(() => reject(new Error("too late")), 50));
    const lateAllow: ModerationHook = () => new Promise((resolve) => setTimeout(() => resolve({ action: "allow" }), 50));
    for (const hook of [lateReject, lateAllow]) {
      const pending = moderate([hook], draft("x"), 30);
      await vi.advanceTimersByTimeAsync(30);
      expect(await settledBy(pending)).toEqual(unavailable);
      await vi.advanceTimersByTimeAsync(30); // the late answer arrives; vitest would report an unhandled rejection
      expect(vi.getTimerCount()).toBe(0);
    }
  });

  it("times out on a real clock too (30 ms)", async () => {
    const verdict = await moderate([() => new Promise<never>(() => {})], draft("x"), 30);
    expect(verdict).toEqual(unavailable);
  });

  it("rejects a timeout that is not a number from 0 to 2^31 - 1", async () => {
    for (const bad of [-1, Number.NaN, Infinity, 2 ** 31, "30" as unknown as number]) {
      await expect(moderate([], draft("x"), bad), String(bad)).rejects.toThrow(RangeError);
    }
    expect(await moderate([() => ({ action: "allow" })], draft("x"), 0)).toEqual({ action: "allow" });
  });
});
