/**
 * The page's token. In this order:
 * 1. one the embedding site handed over (postMessage `{ type: "tsunagi-token", token }`
 *    from the parent window, the page being framed by an allowed origin);
 * 2. one pasted earlier in this tab (sessionStorage; gone with the tab);
 * 3. in dev mode (the node answers /dev/token: loopback only), a dev token for the role
 *    the page is opened as (`?as=host`; each page has its default);
 * 4. otherwise none: the page asks for one to be pasted (TokenGate).
 *
 * The token never goes in the URL (it would end up in logs and histories).
 */
export type Role = "visitor" | "host" | "operator" | "supervisor" | "admin";
export const ROLES: readonly Role[] = ["visitor", "host", "operator", "supervisor", "admin"];

/** Where a pasted or handed-over token is kept for the tab (the e2e tests put one there too). */
export const TOKEN_STORAGE_KEY = "tsunagi.token";

/** The role the page is opened as: `?as=ROLE`, else the page's default. */
export function requestedRole(fallback: Role): Role {
  const asked = new URLSearchParams(location.search).get("as");
  return ROLES.includes(asked as Role) ? (asked as Role) : fallback;
}

/** What a token says of itself (its payload, unverified: only for what the page shows and offers; the server decides). */
export function claimsOf(token: string): { sub?: string; role?: string; rooms?: string[]; exp?: number } {
  try {
    const payload = token.split(".")[1] ?? "";
    return JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
  } catch {
    return {};
  }
}

export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_STORAGE_KEY, token.trim());
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_STORAGE_KEY);
}

/** A token handed over by the embedding site, within `waitMs` of asking it. */
function tokenFromEmbedder(waitMs: number): Promise<string | undefined> {
  if (window.parent === window) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { removeEventListener("message", onMessage); resolve(undefined); }, waitMs);
    const onMessage = (event: MessageEvent) => {
      if (event.source !== window.parent) return;
      const data = event.data as { type?: unknown; token?: unknown };
      if (data?.type !== "tsunagi-token" || typeof data.token !== "string") return;
      clearTimeout(timer);
      removeEventListener("message", onMessage);
      resolve(data.token);
    };
    addEventListener("message", onMessage);
    window.parent.postMessage({ type: "tsunagi-token-request" }, "*");
  });
}

/** A dev token for `role`, when the node is in dev mode and this is its loopback; undefined otherwise. */
async function devToken(role: Role): Promise<string | undefined> {
  try {
    const sub = `${role}-${Math.random().toString(36).slice(2, 8)}`;
    const response = await fetch(`/dev/token?role=${role}&sub=${sub}`);
    return response.ok ? (await response.text()).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** The token to use, or undefined when the user must paste one. */
export async function findToken(role: Role): Promise<string | undefined> {
  const handed = await tokenFromEmbedder(300);
  if (handed) { storeToken(handed); return handed; }
  const stored = sessionStorage.getItem(TOKEN_STORAGE_KEY);
  if (stored) return stored;
  return devToken(role);
}
