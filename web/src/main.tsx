/**
 * The web apps' entry: the page for this path (route.ts), each behind the token gate.
 * - /expo/:hallId: the visitor's expo (pages/expo)
 * - /teleop/:roomId: the operator's cockpit (pages/teleop)
 * - /console: operations (pages/console)
 */
import "./styles.css";
import { render } from "preact";
import { routeOf } from "./app/route.ts";
import { Shell } from "./app/Shell.tsx";
import { ExpoPage } from "./pages/expo/ExpoPage.tsx";
import { CockpitPage } from "./pages/teleop/CockpitPage.tsx";
import { ConsolePage } from "./pages/console/ConsolePage.tsx";

function Home() {
  return (
    <Shell title="Tsunagi">
      <ul class="links">
        <li><a href="/expo/expo-demo">The expo hall (visitor)</a></li>
        <li><a href="/teleop/teleop-demo?as=operator">The cockpit (operator)</a></li>
        <li><a href="/console?as=admin">The operations console</a></li>
      </ul>
    </Shell>
  );
}

function App() {
  const route = routeOf(location.pathname);
  switch (route.page) {
    case "expo": return <ExpoPage hallId={route.hallId} />;
    case "teleop": return <CockpitPage roomId={route.roomId} />;
    case "console": return <ConsolePage section={route.section} />;
    default: return <Home />;
  }
}

render(<App />, document.getElementById("app")!);
