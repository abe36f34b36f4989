/**
 * Finds the page's token (token.ts) and renders the page with it; without one, asks for
 * it to be pasted. The page gets the token and what it claims (role, subject).
 */
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { claimsOf, findToken, storeToken, type Role } from "./token.ts";

export interface Identity {
  token: string;
  role: string;
  sub: string;
}

export function TokenGate(props: { role: Role; children: (identity: Identity) => ComponentChildren }) {
  const [identity, setIdentity] = useState<Identity | undefined>();
  const [looking, setLooking] = useState(true);
  const [pasted, setPasted] = useState("");
  const accept = (token: string) => {
    const claims = claimsOf(token);
    setIdentity({ token, role: claims.role ?? "?", sub: claims.sub ?? "?" });
  };
  useEffect(() => {
    void findToken(props.role).then((token) => {
      if (token) accept(token);
      setLooking(false);
    });
  }, [props.role]);
  if (identity) return <>{props.children(identity)}</>;
  if (looking) return <p class="muted" role="status">Signing in…</p>;
  return (
    <form class="card token-form" onSubmit={(event) => { event.preventDefault(); if (pasted.trim()) { storeToken(pasted); accept(pasted.trim()); } }}>
      <h2>Sign in</h2>
      <p>Paste the token your organiser or operations team gave you. It stays in this tab only.</p>
      <label for="token-input">Token</label>
      <textarea id="token-input" rows={4} value={pasted} onInput={(event) => setPasted((event.target as HTMLTextAreaElement).value)} autoComplete="off" spellcheck={false} />
      <button type="submit">Continue</button>
    </form>
  );
}
