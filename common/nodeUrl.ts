/**
 * A region node's base URL as people give it (`--node http://tokyo-1:2567`): the one check
 * the adapter, its command line and the operator console apply.
 *
 * @example
 *   const nodes = nodeUrls(["http://127.0.0.1:2567/"]);   // ["http://127.0.0.1:2567"]
 *   nodeUrls(["ftp://x"]);                               // throws TypeError: "ftp://x" is not an http:// or https:// URL …
 */

/** `text` as a node base URL without trailing slashes; throws TypeError saying what is wrong. */
export function nodeUrl(text: string): string {
  let url: URL | undefined;
  try { url = new URL(text); } catch { url = undefined; }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new TypeError(`${JSON.stringify(text)} is not an http:// or https:// URL such as http://127.0.0.1:2567`);
  }
  return text.replace(/\/+$/, "");
}

/** Every URL checked by nodeUrl(), at least one, none twice; throws TypeError saying what is wrong. */
export function nodeUrls(texts: readonly string[]): string[] {
  if (!Array.isArray(texts) || texts.length === 0) throw new TypeError("at least one node URL is needed (http://host:port)");
  const seen = new Set<string>();
  return texts.map((text) => {
    const normalised = nodeUrl(text);
    if (seen.has(normalised)) throw new TypeError(`${JSON.stringify(text)} is given twice`);
    seen.add(normalised);
    return normalised;
  });
}
