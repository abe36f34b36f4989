/**
 * `npm run expo -- <check|open|analytics> ...`: the host's command line for halls.
 *
 *   check FILE                                    validates a layout file locally; prints its summary
 *   open FILE --node URL [--token-file F]         validates, then opens the hall on that node's region
 *   analytics HALL_ID --node URL [--token-file F] [--format json|csv] [--table booths|heatmap]
 *   close HALL_ID --node URL [--token-file F]     closes every zone; visitors are told HALL_CLOSED; analytics stay
 *
 * The token is a host token (`--token-file`, TSUNAGI_TOKEN_FILE or TSUNAGI_TOKEN;
 * `--token T` works with a warning: it shows in the process list); without one, a node
 * in dev mode is asked for a host token (`/dev/token`).
 *
 * Exit codes: 0 done; 2 bad usage; 3 invalid layout (every problem printed); 1 refused
 * by the node or unreachable (the coded error printed).
 */
import { LayoutError, loadHallLayout } from "../rooms/expo/HallLayout.ts";
import { accessToken, cliEnv, parseCliArgs, runCli, tokenFlags, usageError } from "./env.ts";
import { SecretError } from "../common/secrets.ts";

const USAGE = [
  "usage: npm run expo -- check FILE",
  "       npm run expo -- open FILE --node URL [--token-file FILE]",
  "       npm run expo -- analytics HALL_ID --node URL [--token-file FILE] [--format json|csv] [--table booths|heatmap]",
  "       npm run expo -- close HALL_ID --node URL [--token-file FILE]",
].join("\n");

async function main(): Promise<number> {
  const parsed = parseCliArgs({
    node: { type: "string" },
    ...tokenFlags,
    format: { type: "string", default: "json" },
    table: { type: "string", default: "booths" },
  });
  if (parsed instanceof Error) return usage(parsed.message);
  const [command, target, ...rest] = parsed.positionals;
  if (!command || !["check", "open", "analytics", "close"].includes(command)) return usage(`unknown command "${command ?? ""}"`);
  if (!target) return usage(command === "analytics" ? "HALL_ID is required" : "FILE is required");
  if (rest.length) return usage(`unexpected argument "${rest[0]}"`);
  let token: string | undefined;
  try {
    const given = accessToken(parsed.values, cliEnv());
    if (given.warning) process.stderr.write(`expo: warning: ${given.warning}\n`);
    token = given.token;
  } catch (error) {
    if (error instanceof SecretError) return usage(error.message);
    throw error;
  }

  if (command === "check" || command === "open") {
    let layout;
    try {
      layout = loadHallLayout(target);
    } catch (error) {
      if (!(error instanceof LayoutError)) throw error;
      process.stderr.write(`${target}: LAYOUT_INVALID, ${error.issues.length} problem(s):\n${error.issues.map((issue) => `  - ${issue}`).join("\n")}\n`);
      return 3;
    }
    process.stderr.write(`${target}: hall "${layout.hallId}" (${layout.width} × ${layout.height} m), ${layout.booths.length} booths, ${layout.areas.length} areas, ${layout.zones.length ? `${layout.zones.length} zones` : "one zone"}: valid\n`);
    if (command === "check") return 0;
    const node = parsed.values.node;
    if (!node) return usage("open needs --node URL");
    const response = await call(node, "/expo/halls", token, { method: "POST", body: JSON.stringify(layout), headers: { "content-type": "application/json" } });
    if (!response) return 1;
    process.stdout.write(`${JSON.stringify(await response.json())}\n`);
    return 0;
  }

  const node = parsed.values.node;
  if (!node) return usage(`${command} needs --node URL`);
  if (command === "close") {
    const response = await call(node, `/expo/halls/${encodeURIComponent(target)}`, token, { method: "DELETE" });
    if (!response) return 1;
    process.stdout.write(`${JSON.stringify(await response.json())}\n`);
    return 0;
  }
  const { format, table } = parsed.values;
  if (format !== "json" && format !== "csv") return usage(`--format must be json or csv, not "${format}"`);
  if (table !== "booths" && table !== "heatmap") return usage(`--table must be booths or heatmap, not "${table}"`);
  const response = await call(node, `/expo/halls/${encodeURIComponent(target)}/analytics?format=${format}&table=${table}`, token, {});
  if (!response) return 1;
  process.stdout.write(format === "json" ? `${JSON.stringify(await response.json(), null, 2)}\n` : await response.text());
  return 0;
}

/** A request with a host token; undefined (after printing why) when refused or unreachable. */
async function call(node: string, path: string, token: string | undefined, init: RequestInit): Promise<Response | undefined> {
  const base = node.replace(/\/+$/, "");
  try {
    token ??= await devToken(base);
    const response = await fetch(`${base}${path}`, { ...init, headers: { ...init.headers as Record<string, string>, authorization: `Bearer ${token}` } });
    if (response.ok) return response;
    const body = await response.json().catch(() => ({})) as { error?: string; issues?: string[] };
    process.stderr.write(`${base}: HTTP ${response.status} ${body.error ?? ""}\n${(body.issues ?? []).map((issue) => `  - ${issue}`).join("\n")}${body.issues ? "\n" : ""}`);
  } catch (error) {
    process.stderr.write(`${base}: ${(error as Error).message}${(error as { cause?: Error }).cause ? ` (${(error as { cause: Error }).cause.message})` : ""}\n`);
  }
  return undefined;
}

async function devToken(base: string): Promise<string> {
  const response = await fetch(`${base}/dev/token?role=host&sub=expo-cli`);
  if (!response.ok) throw new Error(`no --token given and the node is not in dev mode (GET /dev/token answered ${response.status}); pass a host token with --token or TSUNAGI_TOKEN`);
  return response.text();
}

function usage(problem: string): number {
  return usageError("expo", USAGE, problem);
}

runCli("expo", main);
