/**
 * The SDK as a browser page loads it in the browser tests (test/fixtures/browser.ts
 * bundles this with Vite): the page's scripts reach it as `window.tsunagi`.
 */
import * as sdk from "../../client-sdk/index.ts";

(globalThis as unknown as { tsunagi: typeof sdk }).tsunagi = sdk;
