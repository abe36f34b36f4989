/**
 * The visitor's expo page (/expo/:hallId) in a real browser, on a node that runs what
 * `npm start` runs (the demo hall "expo-demo" with bots walking, dev mode, in-memory
 * presence: no Redis). Each page gets its own dev token (`?as=ROLE`), or a given one.
 *
 * Avatars on the plan are `g[data-visitor-id]` with `data-x` / `data-y` in hall metres
 * (as drawn); your own is `data-visitor-id="self"`, and `.expo[data-visitor-id]` is your id.
 *
 * Screenshots: test/e2e/artifacts/expo-visitor.png, expo-host.png, expo-tablet.png.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import type { NodeProcess } from "../fixtures/processes.ts";
import { startDemoAndBrowser, stopDemoAndBrowser, type WebBrowser } from "../fixtures/webPages.ts";
import { TsunagiClient } from "../../client-sdk/TsunagiClient.ts";
import { ExpoSession } from "../../client-sdk/ExpoSession.ts";
import { TsunagiError } from "../../common/TsunagiError.ts";
import { ErrorCode } from "../../proto/index.ts";

const HALL = "expo-demo";
let node: NodeProcess;
let web: WebBrowser;
const pages: Page[] = [];

beforeAll(async () => { ({ node, web } = await startDemoAndBrowser("expo")); }, 60_000);
afterAll(() => stopDemoAndBrowser(pages, web, node), 30_000);

/** Opens the expo page and waits until it is in the hall; returns the page and its visitor id. */
async function openExpo(query = "", options: { withToken?: string; viewport?: { width: number; height: number } } = {}): Promise<{ page: Page; visitorId: number }> {
  const page = await web.open(`${node.httpUrl}/expo/${HALL}${query}`, options);
  pages.push(page);
  const expo = page.locator(".expo[data-visitor-id]");
  await expo.waitFor({ timeout: 15_000 });
  return { page, visitorId: Number(await expo.getAttribute("data-visitor-id")) };
}

/** Where an avatar is drawn on `page` (hall metres), or undefined when it is not there. */
async function avatarAt(page: Page, id: number | "self"): Promise<{ x: number; y: number } | undefined> {
  return page.evaluate((key) => {
    const element = document.querySelector<SVGGElement>(`.plan g[data-visitor-id="${key}"]`);
    if (!element?.dataset.x) return undefined;
    return { x: Number(element.dataset.x), y: Number(element.dataset.y) };
  }, String(id));
}

/** Holds `key` on the focused plan until your own avatar has gone `metres` in `axis` direction `sign`. */
async function walk(page: Page, key: string, axis: "x" | "y", sign: 1 | -1, metres: number): Promise<void> {
  await page.locator('.plan g[data-visitor-id="self"][data-x]').waitFor({ state: "attached", timeout: 5_000 });
  const start = (await avatarAt(page, "self"))!;
  await page.locator(".plan").focus();
  await page.keyboard.down(key);
  try {
    await page.waitForFunction(([axis, goal, sign]) => {
      const self = document.querySelector<SVGGElement>('.plan g[data-visitor-id="self"]');
      const value = Number(self?.dataset[axis as "x" | "y"]);
      return sign === 1 ? value >= (goal as number) : value <= (goal as number);
    }, [axis, start[axis] + sign * metres, sign] as const, { timeout: 10_000 });
  } finally {
    await page.keyboard.up(key);
  }
}

async function devToken(role: string, sub: string): Promise<string> {
  const response = await fetch(`${node.httpUrl}/dev/token?role=${role}&sub=${sub}`);
  expect(response.status).toBe(200);
  return (await response.text()).trim();
}

describe("the expo page", () => {
  it("Two visitor pages walk toward each other, see each other move, and chat", { timeout: 60_000 }, async () => {
    const [a, b] = await Promise.all([openExpo(), openExpo()]);
    expect(a.visitorId).not.toBe(b.visitorId);
    // Both start at the hall's spawn point: each sees the other's avatar.
    await a.page.locator(`.plan g[data-visitor-id="${b.visitorId}"]`).waitFor({ state: "attached", timeout: 10_000 });
    await b.page.locator(`.plan g[data-visitor-id="${a.visitorId}"]`).waitFor({ state: "attached", timeout: 10_000 });

    // Apart first (A west, B east), then toward each other, each by keyboard.
    await Promise.all([walk(a.page, "ArrowLeft", "x", -1, 6), walk(b.page, "KeyD", "x", 1, 6)]);
    // Once each page shows the other where it stopped (frames and the glide may trail a busy machine).
    const settled = async (viewer: Page, walker: Page, id: number) => {
      const stopped = (await avatarAt(walker, "self"))!;
      await viewer.waitForFunction(([key, x]) => Math.abs(Number(document.querySelector<SVGGElement>(`.plan g[data-visitor-id="${key}"]`)?.dataset.x) - x) < 0.5,
        [id, stopped.x] as const, { timeout: 10_000 });
      return (await avatarAt(viewer, id))!;
    };
    const [aSeenByB, bSeenByA] = await Promise.all([settled(b.page, a.page, a.visitorId), settled(a.page, b.page, b.visitorId)]);
    await Promise.all([walk(a.page, "ArrowRight", "x", 1, 4), walk(b.page, "ArrowLeft", "x", -1, 4)]);
    // Each sees the other's avatar move toward it (A east, B west), glided to the new place.
    await b.page.waitForFunction(([id, x]) => Number(document.querySelector<SVGGElement>(`.plan g[data-visitor-id="${id}"]`)?.dataset.x) >= x,
      [a.visitorId, aSeenByB.x + 3] as const, { timeout: 10_000 });
    await a.page.waitForFunction(([id, x]) => Number(document.querySelector<SVGGElement>(`.plan g[data-visitor-id="${id}"]`)?.dataset.x) <= x,
      [b.visitorId, bSeenByA.x - 3] as const, { timeout: 10_000 });
    // The text alternative lists the other visitor too.
    await a.page.locator(`#expo-near li[data-visitor-id="${b.visitorId}"]`).waitFor({ timeout: 5_000 });

    // Hall chat from A reaches B.
    const text = `hello from A ${Date.now().toString(36)}`;
    await a.page.locator("#expo-chat-input").fill(text);
    await a.page.locator("#expo-chat-input").press("Enter");
    await b.page.locator(".chat-log li", { hasText: text }).waitFor({ timeout: 10_000 });
    await a.page.locator(".chat-log li.mine", { hasText: text }).waitFor({ timeout: 5_000 });
    await web.screenshot(a.page, "expo-visitor");
  });

  it("A host page announces, and a visitor page shows the announcement", { timeout: 60_000 }, async () => {
    const [host, visitor] = await Promise.all([openExpo("?as=host"), openExpo()]);
    await host.page.locator("section.host").waitFor({ timeout: 5_000 });
    const text = `Keynote soon ${Date.now().toString(36)}`;
    await host.page.locator("#host-announce").fill(text);
    await host.page.getByRole("button", { name: "Announce", exact: true }).click();
    await host.page.locator('[data-testid="host-result"]', { hasText: "delivered to" }).waitFor({ timeout: 10_000 });
    const notice = visitor.page.locator('[aria-live="polite"] .notice.announcement', { hasText: text });
    await notice.waitFor({ timeout: 10_000 });
    await host.page.locator(".notice.announcement", { hasText: text }).waitFor({ timeout: 10_000 });
    await web.screenshot(host.page, "expo-host");

    // The host kicks the visitor (chosen from those in view): the visitor's page says so, and offers to join again.
    await host.page.locator(`#host-visitor option[value="${visitor.visitorId}"]`).waitFor({ state: "attached", timeout: 10_000 });
    await host.page.locator("#host-visitor").selectOption(String(visitor.visitorId));
    await host.page.locator("#host-reason").fill("e2e kick");
    await host.page.getByRole("button", { name: "Kick", exact: true }).click();
    await host.page.locator('[data-testid="host-result"]', { hasText: "Kicked" }).waitFor({ timeout: 10_000 });
    const problem = visitor.page.locator('.problem[data-code="KICKED"]');
    await problem.waitFor({ timeout: 10_000 });
    expect(await problem.innerText()).toMatch(/removed you/);
    await problem.getByRole("button", { name: "Try again" }).click();
    await visitor.page.locator(".expo[data-visitor-id]").waitFor({ timeout: 10_000 });
  });

  it("A visitor's token opens no admin or teleop control", { timeout: 60_000 }, async () => {
    const token = await devToken("visitor", `e2e-forger-${Date.now().toString(36)}`);
    const { page } = await openExpo("", { withToken: token });
    await page.locator(".plan").waitFor();
    expect(await page.locator("section.host").count()).toBe(0);
    const controls = await page.locator("button").allInnerTexts();
    expect(controls.filter((label) => /announce|present|pin|kick|ban|e-stop|lease|drive/i.test(label))).toEqual([]);
    expect(await page.locator('input[id^="host-"], select[id^="host-"]').count()).toBe(0);

    // Forged: a HostCommand with the same visitor token, through the SDK. The room refuses it.
    const expo = await ExpoSession.join(new TsunagiClient({ url: node.httpUrl, token }), HALL, { name: "forger" });
    try {
      expect(expo.role).toBe("visitor");
      expect(expo.host).toBeUndefined();
      const refusal = await expo.request({ hostCommand: { announce: { text: "forged announcement" } } }).then(() => undefined, (error) => error);
      expect(refusal).toBeInstanceOf(TsunagiError);
      expect((refusal as TsunagiError).code).toBe(ErrorCode.FORBIDDEN);
      const kick = await expo.request({ hostCommand: { moderate: { action: 3, visitorId: 1 } } }).then(() => undefined, (error) => error);
      expect((kick as TsunagiError).code).toBe(ErrorCode.FORBIDDEN);
    } finally {
      await expo.leave();
    }
    // And no visitor was told anything.
    expect(await page.locator(".notice.announcement", { hasText: "forged" }).count()).toBe(0);
  });

  it("works with the keyboard alone, with visible focus, and fits a tablet", { timeout: 60_000 }, async () => {
    const { page } = await openExpo();
    await page.locator("body").click({ position: { x: 1, y: 1 } }).catch(() => {});
    const reached = new Set<string>();
    for (let i = 0; i < 60 && !(reached.has("plan") && reached.has("chat") && reached.has("button")); i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const element = document.activeElement as HTMLElement | null;
        if (!element || element === document.body) return undefined;
        const kind = element.classList.contains("plan") ? "plan" : element.id === "expo-chat-input" ? "chat" : element.tagName === "BUTTON" ? "button" : element.tagName.toLowerCase();
        const style = getComputedStyle(element);
        return { kind, outline: style.outlineStyle, width: style.outlineWidth };
      });
      if (!focused) continue;
      expect(focused.outline, `focus outline of a ${focused.kind}`).not.toBe("none");
      reached.add(focused.kind);
    }
    expect([...reached]).toEqual(expect.arrayContaining(["plan", "chat", "button"]));

    // Tablet portrait: the plan on top, the panels below it.
    const tablet = await openExpo("", { viewport: { width: 820, height: 1180 } });
    const plan = (await tablet.page.locator(".plan").boundingBox())!;
    const chat = (await tablet.page.locator("section.chat").boundingBox())!;
    expect(plan.width).toBeGreaterThan(700);
    expect(chat.y).toBeGreaterThanOrEqual(plan.y + plan.height);
    expect(await tablet.page.evaluate(() => document.documentElement.scrollWidth <= innerWidth + 1)).toBe(true);
    await web.screenshot(tablet.page, "expo-tablet");

    // A tap on the plan walks there, in steps: 10 m east of where you stand.
    await tablet.page.locator('.plan g[data-visitor-id="self"][data-x]').waitFor({ state: "attached", timeout: 5_000 });
    const start = (await avatarAt(tablet.page, "self"))!;
    const box = await tablet.page.locator(".plan svg").boundingBox();
    const metre = box!.width / Number(await tablet.page.locator(".plan svg").getAttribute("data-width"));
    await tablet.page.locator(".plan svg").click({ position: { x: (start.x + 10) * metre, y: box!.height - start.y * metre } });
    await tablet.page.waitForFunction((goal) => Number(document.querySelector<SVGGElement>('.plan g[data-visitor-id="self"]')?.dataset.x) >= goal, start.x + 8, { timeout: 10_000 });
    expect(web.pageErrors).toEqual([]);
  });

  it("An unknown hall says so, with the server's message", { timeout: 30_000 }, async () => {
    const page = await web.open(`${node.httpUrl}/expo/no-such-hall`);
    pages.push(page);
    const problem = page.locator(".problem");
    await problem.waitFor({ timeout: 15_000 });
    expect(await problem.getAttribute("data-code")).toBe("UNKNOWN_ROOM");
    expect(await problem.locator("h2").innerText()).toMatch(/no hall "no-such-hall"/);
  });

  it("offers voice when the node has it: join, mute and unmute", { timeout: 60_000 }, async () => {
    const health = await (await fetch(`${node.httpUrl}/healthz`)).json() as { voice?: unknown };
    const { page } = await openExpo();
    if (!health.voice || health.voice === "off" || (health.voice as { up?: boolean }).up === false) {
      // No voice on this node: the page offers none, and works all the same.
      await page.locator(".plan").waitFor();
      expect(await page.getByRole("button", { name: "Join voice" }).count()).toBe(0);
      return;
    }
    await page.getByRole("button", { name: "Join voice" }).click({ timeout: 10_000 });
    const mute = page.getByRole("button", { name: "Mute", exact: true });
    await Promise.race([
      mute.waitFor({ timeout: 30_000 }),
      page.locator("section.voice .error").waitFor({ timeout: 30_000 }).then(async () => { throw new Error(`voice failed: ${await page.locator("section.voice .error").innerText()}`); }),
    ]);
    await mute.click();
    await page.getByRole("button", { name: "Unmute", exact: true }).waitFor({ timeout: 5_000 });
    expect(await page.locator("section.voice .speaking").innerText()).toMatch(/Muted/);
    await page.getByRole("button", { name: "Unmute", exact: true }).click();
    await mute.waitFor({ timeout: 5_000 });
    await page.getByRole("button", { name: "Leave voice" }).click();
    await page.getByRole("button", { name: "Join voice" }).waitFor({ timeout: 5_000 });
  });
});
