/**
 * Calls to the node's HTTP routes with the page's token (a bearer token, never in the
 * URL), answered as data: the JSON body, or the server's coded refusal as it said it
 * (`[403 FORBIDDEN] …`), or what went wrong on the way. The server decides; the page
 * shows its answer.
 *
 * @example
 *   const answer = await callApi(token, "/expo/halls/expo-demo/analytics");
 *   if (answer.ok) show(answer.body); else showError(answer.error);
 */
export type ApiAnswer<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; code?: number; error: string; body?: unknown };

export async function callApi<T = unknown>(token: string, path: string, init: { method?: "GET" | "POST" | "DELETE"; signal?: AbortSignal } = {}): Promise<ApiAnswer<T>> {
  let response: Response;
  try {
    response = await fetch(path, { method: init.method ?? "GET", headers: { authorization: `Bearer ${token}`, accept: "application/json" }, cache: "no-store", signal: init.signal });
  } catch (error) {
    return { ok: false, status: 0, error: `the node did not answer (${(error as Error).message})` };
  }
  const type = response.headers.get("content-type") ?? "";
  const text = await response.text().catch(() => "");
  if (!type.includes("application/json")) {
    // e.g. a route this node does not have, answered by the web app's page
    return { ok: false, status: response.ok ? 404 : response.status, error: response.ok ? `this node has no ${path.split("?")[0]} route` : `${response.status}: ${text.slice(0, 200)}` };
  }
  let body: unknown;
  try { body = JSON.parse(text); } catch { return { ok: false, status: response.status, error: `not JSON: ${text.slice(0, 200)}` }; }
  if (response.ok) return { ok: true, status: response.status, body: body as T };
  const coded = body as { code?: number; error?: string };
  return { ok: false, status: response.status, code: coded.code, error: coded.error ?? `${response.status}`, body };
}

/** Fetches `path` with the token and offers the answer as a file download (`filename`). */
export async function downloadWithToken(token: string, path: string, filename: string): Promise<{ ok: true; bytes: number } | { ok: false; error: string }> {
  let response: Response;
  try {
    response = await fetch(path, { headers: { authorization: `Bearer ${token}` }, cache: "no-store" });
  } catch (error) {
    return { ok: false, error: `the node did not answer (${(error as Error).message})` };
  }
  if (!response.ok) {
    const text = await response.text().catch(() => "");
    let message = text;
    try { message = (JSON.parse(text) as { error?: string }).error ?? text; } catch { /* plain text */ }
    return { ok: false, error: message.slice(0, 300) || `${response.status}` };
  }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return { ok: true, bytes: blob.size };
}
