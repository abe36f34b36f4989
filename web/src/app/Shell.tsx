/** The frame of every page: a skip link, the header with the page's name and who is signed in, and the main area. */
import type { ComponentChildren } from "preact";

export function Shell(props: { title: string; who?: { role: string; sub: string }; nav?: ComponentChildren; children: ComponentChildren }) {
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand" aria-hidden="true">Tsunagi</span>
        <h1>{props.title}</h1>
        {props.nav}
        {props.who && <span class="who" title="signed in as">{props.who.sub} · {props.who.role}</span>}
      </header>
      <main id="main" tabIndex={-1}>{props.children}</main>
    </>
  );
}
