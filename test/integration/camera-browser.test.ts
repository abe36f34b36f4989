/**
 * The machine's camera in the operator's browser: the demo node (its own Janus, the
 * simulated excavator's adapter started with `--camera sim`) tells the adapter where to
 * send its camera; an operator's Chromium page asks the teleop room for the camera,
 * watches it through Janus (SDK CameraView) and decodes frames, more and more of them.
 * A device that is not in the room is refused DEVICE_UNKNOWN. One node and one browser.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNode, waitFor, type NodeProcess } from "../fixtures/processes.ts";
import { startBrowser, type TestBrowser } from "../fixtures/browser.ts";
import { machineAddress } from "../../server/voice/settings.ts";

let node: NodeProcess;
let browser: TestBrowser;

beforeAll(async () => {
  [node, browser] = await Promise.all([
    startNode({ demo: true, extraArgs: ["--voice-mode", "on", "--voice-media-interfaces", machineAddress(), "--voice-rtp-port-range", "46000-46499"] }),
    startBrowser(),
  ]);
}, 90_000);
afterAll(async () => {
  await browser?.stop();
  await node?.stop();
});

describe("the excavator's camera in the operator's browser", () => {
  it("arrives as a video track whose frames keep coming; an unknown device is refused", { timeout: 90_000 }, async () => {
    const page = await browser.page("operator");
    // The dev token route answers no browser origin (CORS): the test fetches it, as a dev server would.
    const token = await (await fetch(`${node.httpUrl}/dev/token?role=operator`)).text();
    const watched = await page.evaluate(async ({ url, token }) => {
      const { TsunagiClient, CameraView } = (globalThis as any).tsunagi;
      const session = await new TsunagiClient({ url, token }).join("teleop", { roomId: "teleop-demo" });
      const camera = await CameraView.watch(session, "excavator-1");
      const video = document.createElement("video");
      Object.assign(video, { autoplay: true, muted: true, playsInline: true, width: 640, height: 360 });
      video.srcObject = camera.stream;
      document.body.append(video);
      const unknown = await CameraView.watch(session, "no-such-machine").then(() => "watched", (error: any) => error.code);
      (globalThis as any).t = { session, camera };
      return { codec: camera.grant.codec, unknown };
    }, { url: node.httpUrl, token });
    expect(watched).toEqual({ codec: "h264", unknown: 4414 }); // DEVICE_UNKNOWN

    const frames = () => page.evaluate(() => (globalThis as any).t.camera.frames());
    const first = await waitFor(async () => { const f = await frames(); return f.decoded > 0 && f; }, 30_000, "the first decoded frame")
      .catch((error) => { throw new Error(`${error.message}\n${node.output().split("\n").filter((line) => /camera|ffmpeg|mountpoint/i.test(line)).slice(-20).join("\n")}`); });
    await waitFor(async () => (await frames()).decoded > first.decoded + 10, 20_000, "frames keep arriving");
    const last = await frames();
    expect(last).toMatchObject({ width: 640, height: 360 });
    await page.waitForFunction(() => (document.querySelector("video") as HTMLVideoElement | null)?.readyState! >= 2, undefined, { timeout: 10_000 });
    await browser.screenshot(page, "camera-operator");
    await page.evaluate(async () => { (globalThis as any).t.camera.close(); await (globalThis as any).t.session.leave(); });
  });
});
