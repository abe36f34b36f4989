/**
 * The hall, once in: the plan with its text alternative, notices, chat, voice, and a
 * host's tools. Wide screens put the plan beside the panels; narrow ones stack them
 * (styles.css, "expo").
 */
import { useState } from "preact/hooks";
import { Shell } from "../../app/Shell.tsx";
import type { ExpoSession } from "../../../../client-sdk/ExpoSession.ts";
import { ErrorCode } from "../../../../proto/index.ts";
import { useExpo } from "./useExpo.ts";
import { HallPlan } from "./HallPlan.tsx";
import { NearbyList } from "./NearbyList.tsx";
import { Notices } from "./Notices.tsx";
import { ChatPanel, type ChannelKey } from "./ChatPanel.tsx";
import { VoicePanel } from "./VoicePanel.tsx";
import { HostPanel } from "./HostPanel.tsx";
import { JoinProblem } from "./ExpoPage.tsx";
import { describeError } from "./describe.ts";

export function ExpoView(props: { expo: ExpoSession; who: { role: string; sub: string }; onRejoin: () => void }) {
  const { expo } = props;
  const [state, addChat] = useExpo(expo);
  const [channel, setChannel] = useState<ChannelKey>("hall");
  const presenting = new Set(state.presentations.filter((p) => p.live).map((p) => p.boothId!));
  const boothsNear = new Set(state.boothsNear);
  const title = `Expo · ${expo.hall.name || expo.hall.hallId}`;

  if (state.ended) {
    const why = state.ended.error ? describeError(state.ended.error) : { code: state.ended.code, codeName: String(state.ended.code), message: `the connection closed (${state.ended.code})`, retryable: true };
    const retryable = why.code !== ErrorCode.BANNED && why.code !== ErrorCode.HALL_CLOSED && why.retryable;
    return (
      <Shell title={title} who={props.who}>
        <JoinProblem hallId={expo.hall.hallId} code={why.code} codeName={why.codeName} message={why.message} retryable={retryable} onRetry={props.onRejoin} />
      </Shell>
    );
  }

  const toDirect = (visitorId: number) => {
    setChannel(`direct:${visitorId}`);
    document.getElementById("expo-chat-input")?.focus();
  };
  return (
    <Shell title={title} who={props.who}>
      <div class="expo" data-visitor-id={expo.visitorId} data-role={expo.role}>
        <div class="expo-main">
          <HallPlan expo={expo} neighboursVersion={state.neighboursVersion} presenting={presenting} boothsNear={boothsNear} />
          <p class="muted hint">Focus the plan (Tab) and walk with the arrow keys or W A S D, or click a spot to walk there.</p>
          <NearbyList expo={expo} boothsNear={state.boothsNear} areas={state.areas} presenting={presenting} neighboursVersion={state.neighboursVersion} onMessage={toDirect} />
        </div>
        <div class="expo-side">
          <Notices notices={state.notices} pinned={state.pinned} />
          <ChatPanel expo={expo} messages={state.chat} boothsNear={state.boothsNear} neighboursVersion={state.neighboursVersion} channel={channel} onChannel={setChannel} onSent={addChat} />
          <VoicePanel expo={expo} />
          {expo.host && <HostPanel expo={expo} host={expo.host} presenting={presenting} neighboursVersion={state.neighboursVersion} />}
        </div>
      </div>
    </Shell>
  );
}
