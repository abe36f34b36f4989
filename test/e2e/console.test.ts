/**
 * The operations console (`/console/<section>`, web/src/pages/console) in a real browser,
 * on one demo node (what `npm start` runs: dev mode, the hall "expo-demo" with bots
 * walking, the teleop room "teleop-demo"). The page gets a dev token for `?as=ROLE`
 * (default admin).
 *
 * A demo node is one region: on it, the handoff form reaches the server and shows its
 * coded refusal (a region with no node). A real handoff runs on two regions of the test
 * harness (test/fixtures/regions.ts: jp-tokyo and jp-osaka, each its own Redis, no delays),
 * the console opened on Tokyo's node with an admin token of that cluster.
 *
 * Screenshots: test/e2e/artifacts/console-regions.png, console-rooms.png, console-expo.png,
 * console-teleop.png, console-admin.png, console-tablet.png.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import type { NodeProcess } from "../fixtures/processes.ts";
import { startDemoAndBrowser, stopDemoAndBrowser, type WebBrowser } from "../fixtures/webPages.ts";
import { ErrorCode } from "../../proto/index.ts";
import { startRegions, type RegionsHarness } from "../fixtures/regions.ts";
import { testToken } from "../fixtures/tokens.ts";
import { TsunagiClient, type RoomSession } from "../../client-sdk/index.ts";

let node: NodeProcess;
let web: WebBrowser;
const pages: Page[] = [];

beforeAll(async () => { ({ node, web } = await startDemoAndBrowser("console")); }, 60_000);
afterAll(() => stopDemoAndBrowser(pages, web, node), 30_000);

async function open(path: string, viewport?: { width: number; height: number }): Promise<Page> {
  const page = await web.open(`${node.httpUrl}${path}`, { viewport });
  pages.push(page);
  // the console's frame is there once the token gate let it through
  await page.locator(".console[data-role]").waitFor({ timeout: 15_000 });
  return page;
}

async function devToken(role: string): Promise<string> {
  const response = await fetch(`${node.httpUrl}/dev/token?role=${role}&sub=console-test-${role}`);
  expect(response.status).toBe(200);
  return (await response.text()).trim();
}

/** Whether the node has the console's own routes (server/console/consoleRoutes.ts, once registered in server/http/routes.ts). */
async function hasConsoleRoutes(): Promise<boolean> {
  const response = await fetch(`${node.httpUrl}/console/api/nodes`, { headers: { authorization: `Bearer ${await devToken("admin")}` } });
  return (response.headers.get("content-type") ?? "").includes("application/json");
}

describe("the operations console", () => {
  it("shows the demo rooms and regions", async () => {
    const regions = await open("/console/regions");
    await expect.poll(() => regions.getByRole("link", { name: "Regions" }).getAttribute("aria-current")).toBe("page");
    const row = regions.locator(`tr[data-region="${node.regionId}"][data-node="${node.nodeId}"]`);
    await row.waitFor({ timeout: 10_000 });
    await expect.poll(() => row.locator("td").nth(1).textContent()).toMatch(/ok|draining|overloaded/);
    await regions.getByTestId("self-node").filter({ hasText: node.nodeId }).waitFor({ timeout: 10_000 });
    // the round trips: this node's row when the console routes are there, else the page says what is missing
    if (await hasConsoleRoutes()) await regions.locator("table.rtt tbody tr", { hasText: node.nodeId }).waitFor({ timeout: 10_000 });
    else await regions.getByTestId("rtt-missing").waitFor({ timeout: 10_000 });
    await web.screenshot(regions, "console-regions");

    const rooms = await open("/console/rooms");
    const expoRow = rooms.locator('tr[data-room-type="expo"]').first();
    // The first lobby join of the run, on a machine the whole suite shares: headroom, and what the page said if it never lists.
    await expoRow.waitFor({ timeout: 20_000 }).catch(async (error: Error) => {
      await web.screenshot(rooms, "console-rooms-unlisted").catch(() => {});
      const said = await rooms.locator('[role="status"], [role="alert"], table').allTextContents().catch(() => []);
      throw new Error(`${error.message}\nthe rooms page said: ${JSON.stringify(said).slice(0, 2000)}`);
    });
    expect(await expoRow.locator("th").textContent()).toContain("expo-demo");
    const teleopRow = rooms.locator('tr[data-room-type="teleop"]', { hasText: "teleop-demo" });
    await teleopRow.waitFor({ timeout: 10_000 });
    expect(await teleopRow.locator("td").nth(0).textContent()).toBe("teleop");
    expect(await teleopRow.locator("td").nth(2).textContent()).toBe(node.regionId);
    expect(await teleopRow.locator("td").nth(3).textContent()).toBe(node.nodeId);
    // the history of a room, from the admin route on its node
    await teleopRow.getByRole("button", { name: /Handoff history/ }).click();
    await rooms.getByText("No handoff yet.").waitFor({ timeout: 10_000 });
    await web.screenshot(rooms, "console-rooms");
    expect(web.pageErrors).toEqual([]);
  }, 60_000);

  it("shows the expo heatmap changing as the bots walk", async () => {
    const page = await open("/console/expo?hall=expo-demo");
    const total = page.getByTestId("heatmap-total");
    await total.waitFor({ timeout: 15_000 });
    const first = Number(await total.textContent());
    // the analytics refresh every 3 s; the bots never stop walking
    await page.waitForFunction((before) => Number(document.querySelector('[data-testid="heatmap-total"]')?.textContent) > before, first, { timeout: 25_000 });
    expect(Number(await total.textContent())).toBeGreaterThan(first);
    await page.locator(".hottest li").first().waitFor({ timeout: 5_000 });
    expect(await page.locator("table.booths tbody tr").count()).toBeGreaterThan(0);
    // the CSV export: fetched with the token, offered as a download
    const [download] = await Promise.all([
      page.waitForEvent("download", { timeout: 10_000 }),
      page.getByRole("button", { name: "Export booths (CSV)" }).click(),
    ]);
    expect(download.suggestedFilename()).toBe("expo-demo-booths.csv");
    await web.screenshot(page, "console-expo");
  }, 60_000);

  it("shows the teleop devices and their lease holders; an e-stop goes through the room", async () => {
    const admin = await open("/console/teleop");
    await admin.getByTestId("devices-need-role").waitFor({ timeout: 10_000 });
    // the audit needs the console route (server/console/consoleRoutes.ts): the page says so when the node lacks it
    if (await hasConsoleRoutes()) {
      await admin.locator('[data-testid="audit-verify"][data-ok="true"]').waitFor({ timeout: 10_000 });
    } else {
      await admin.getByTestId("audit-missing").waitFor({ timeout: 10_000 });
    }

    const supervisor = await open("/console/teleop?as=supervisor");
    const row = supervisor.locator("tr[data-device-id]").first();
    await row.waitFor({ timeout: 15_000 });
    const deviceId = (await row.getAttribute("data-device-id"))!;
    await row.getByRole("button", { name: `E-stop ${deviceId}` }).click();
    await row.getByText("latched").waitFor({ timeout: 10_000 });
    await web.screenshot(supervisor, "console-teleop");
    await row.getByRole("button", { name: `Reset ${deviceId}` }).click();
    await row.getByText("clear").waitFor({ timeout: 10_000 });
  }, 60_000);

  it("sends a handoff from the admin page and shows the server's answer (one region: its refusal)", async () => {
    const page = await open("/console/admin");
    await page.locator("#handoff-room option").first().waitFor({ state: "attached", timeout: 10_000 });
    const value = await page.locator("#handoff-room option", { hasText: "teleop-demo" }).first().getAttribute("value");
    await page.locator("#handoff-room").selectOption(value!);
    await page.getByLabel("To region").fill("xx-nowhere");
    await page.getByRole("button", { name: "Hand off…" }).click();
    // the confirmation step, then the server's answer
    await page.getByRole("button", { name: "Confirm handoff" }).click();
    const answer = page.getByTestId("handoff-answer");
    await answer.waitFor({ timeout: 15_000 });
    expect(await answer.getAttribute("data-ok")).toBe("false");
    expect(Number(await answer.getAttribute("data-code"))).toBe(ErrorCode.OVERLOADED);
    expect(await answer.textContent()).toMatch(/no node of region xx-nowhere/);
    // the drain panel: each live node and region, confirmed first; draining the only node warns, and is cancelled here
    const drainNode = page.getByRole("button", { name: /^Drain node / });
    await drainNode.first().waitFor({ timeout: 10_000 });
    await drainNode.first().click();
    const confirm = page.getByRole("alertdialog").filter({ hasText: "Drain node" });
    await confirm.waitFor({ timeout: 5_000 });
    expect(await confirm.textContent()).toMatch(/the service stops with it/);
    await confirm.getByRole("button", { name: "Cancel" }).click();
    expect(await page.getByRole("alertdialog").count()).toBe(0);
    await web.screenshot(page, "console-admin");
  }, 60_000);

  it("opens no admin or teleop control to a visitor's token, and the server refuses a forged admin call", async () => {
    const page = await open("/console/admin?as=visitor");
    await page.getByTestId("no-admin").waitFor({ timeout: 10_000 });
    expect(await page.getByRole("button", { name: /Hand off|Confirm/ }).count()).toBe(0);
    const teleop = await open("/console/teleop?as=visitor");
    await teleop.getByTestId("devices-need-role").waitFor({ timeout: 10_000 });
    expect(await teleop.getByRole("button", { name: /E-stop/ }).count()).toBe(0);

    // the same calls, forged with the visitor's token
    const visitor = await devToken("visitor");
    const forged = [
      fetch(`${node.httpUrl}/rooms/teleop__teleop-demo/handoff?to=${node.regionId}`, { method: "POST", headers: { authorization: `Bearer ${visitor}` } }),
      fetch(`${node.httpUrl}/rooms/teleop__teleop-demo/handoffs`, { headers: { authorization: `Bearer ${visitor}` } }),
      fetch(`${node.httpUrl}/expo/halls/expo-demo/analytics`, { headers: { authorization: `Bearer ${visitor}` } }),
    ];
    for (const response of await Promise.all(forged)) {
      expect([401, 403]).toContain(response.status);
      const body = await response.json();
      expect([ErrorCode.FORBIDDEN, ErrorCode.AUTH_FAILED]).toContain(body.code);
    }
    // and without a token at all
    expect([401, 403]).toContain((await fetch(`${node.httpUrl}/rooms/teleop__teleop-demo/handoff?to=x`, { method: "POST" })).status);
  }, 60_000);

  it("works from the keyboard, with visible focus, and on a tablet", async () => {
    const page = await open("/console/rooms", { width: 820, height: 1180 });
    await page.locator('tr[data-room-type="teleop"]').first().waitFor({ timeout: 10_000 });
    // skip link first, then the nav's links in order
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press("Tab");
      const focus = await page.evaluate(() => {
        const element = document.activeElement as HTMLElement;
        const style = getComputedStyle(element);
        return { text: element.textContent, tag: element.tagName, outline: style.outlineStyle, width: parseFloat(style.outlineWidth), visible: element.matches(":focus-visible") };
      });
      expect(focus.tag).toBe("A");
      expect(focus.visible).toBe(true);
      expect(focus.outline).not.toBe("none");
      expect(focus.width).toBeGreaterThanOrEqual(2);
      seen.push(focus.text ?? "");
    }
    expect(seen).toEqual(["Regions", "Rooms", "Expo", "Teleop", "Admin"]);
    expect(await page.evaluate(() => document.activeElement?.getAttribute("href"))).toBe("/console/admin");
    // Enter follows the focused link
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/console\/admin$/, { timeout: 10_000 });
    await page.locator("#handoff-room").waitFor({ timeout: 10_000 });
    // no sideways scrolling on a tablet
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(true);
    await page.goto(`${node.httpUrl}/console/rooms`);
    await page.locator('tr[data-room-type="teleop"]').first().waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(true);
    await web.screenshot(page, "console-tablet");
    expect(web.pageErrors).toEqual([]);
  }, 60_000);
});

describe("a handoff from the console, between two regions", () => {
  let harness: RegionsHarness | undefined;
  let member: RoomSession | undefined;

  beforeAll(async () => {
    harness = await startRegions({ regions: ["jp-tokyo", "jp-osaka"], delays: false, nodeArgs: ["--handoff-rpc-timeout-ms", "2000"] });
  }, 60_000);
  afterAll(async () => {
    await member?.leave().catch(() => {});
    await harness?.stop();
  }, 30_000);

  it("hands a room to the other region from the admin page; the rooms page shows the move live and in its history", async () => {
    const tokyo = harness!.region("jp-tokyo").nodes[0]!;
    const admin = await testToken(harness!.clusterName, "admin", "console-admin");
    // a room in Tokyo with one member (an empty room would close)
    const host = await testToken(harness!.clusterName, "host", "console-host");
    member = await new TsunagiClient({ url: tokyo.httpUrl, token: host }).joinOrCreate("session", { roomId: "console-move", rttHints: { "jp-tokyo": 1, "jp-osaka": 10 } });
    const roomId = member.roomId;

    const rooms = await web.open(`${tokyo.httpUrl}/console/rooms`, { withToken: admin });
    pages.push(rooms);
    const row = rooms.locator(`tr[data-room-id="${roomId}"]`);
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator("td").nth(2).textContent()).toBe("jp-tokyo");

    const page = await web.open(`${tokyo.httpUrl}/console/admin`, { withToken: admin });
    pages.push(page);
    await page.locator(`#handoff-room option[value="${roomId}"]`).waitFor({ state: "attached", timeout: 10_000 });
    await page.locator("#handoff-room").selectOption(roomId);
    await page.getByLabel("To region").fill("jp-osaka");
    await page.getByRole("button", { name: "Hand off…" }).click();
    await page.getByRole("button", { name: "Confirm handoff" }).click();
    const answer = page.getByTestId("handoff-answer");
    await answer.waitFor({ timeout: 20_000 });
    expect(await answer.getAttribute("data-ok"), await answer.textContent() ?? "").toBe("true");
    expect(await answer.textContent()).toMatch(/to jp-osaka: complete/);
    await web.screenshot(page, "console-admin-handoff");

    // the rooms page, open all along, saw it move
    await rooms.locator(`[data-testid="live-moves"] li[data-room-id="${roomId}"]`).filter({ hasText: "to jp-osaka/" }).waitFor({ timeout: 10_000 });
    await row.locator("td", { hasText: "jp-osaka" }).waitFor({ timeout: 10_000 });
    // its history is kept by its new node, which Tokyo does not ask for it: the page says so and links that node's console
    await row.getByRole("button", { name: /Handoff history/ }).click();
    await rooms.getByRole("alert").filter({ hasText: "UNKNOWN_ROOM" }).waitFor({ timeout: 10_000 });
    const osaka = harness!.region("jp-osaka").nodes[0]!;
    expect(await rooms.getByTestId("room-node-console").getAttribute("href")).toBe(`${osaka.httpUrl}/console/rooms`);
    const there = await web.open(`${osaka.httpUrl}/console/rooms`, { withToken: admin });
    pages.push(there);
    await there.locator(`tr[data-room-id="${roomId}"]`).getByRole("button", { name: /Handoff history/ }).click();
    const record = there.locator("table.handoffs tbody tr").filter({ hasText: "complete" });
    await record.waitFor({ timeout: 10_000 });
    expect(await record.textContent()).toMatch(/adminjp-tokyo\/tokyo-1jp-osaka\/osaka-1/);
    await web.screenshot(rooms, "console-rooms-handoff");

    // Drain Osaka's node from Tokyo's admin page: the room comes back to Tokyo, with its member, and Osaka's node stops.
    await page.getByRole("button", { name: `Drain node ${osaka.nodeId}` }).click();
    await page.getByRole("button", { name: `Confirm drain of ${osaka.nodeId}` }).click();
    const drained = page.getByTestId("drain-answer");
    await drained.waitFor({ timeout: 15_000 });
    expect(await drained.getAttribute("data-ok"), await drained.textContent() ?? "").toBe("true");
    expect(await drained.textContent()).toMatch(new RegExp(`Node ${osaka.nodeId} is draining`));
    await rooms.locator(`[data-testid="live-moves"] li[data-room-id="${roomId}"]`).filter({ hasText: "to jp-tokyo/" }).waitFor({ timeout: 30_000 });
    await row.locator("td", { hasText: "jp-tokyo" }).waitFor({ timeout: 10_000 });
    expect(await Promise.race([osaka.exited, new Promise((resolve) => setTimeout(() => resolve("still running"), 30_000))])).toBe(0);
    expect(member!.roomId).toBe(roomId);
    await web.screenshot(page, "console-admin-drain");
  }, 60_000);
});
