/**
 * Proximity voice, offered only when the node runs it (its /healthz). Joining asks for
 * the microphone and a grant; any failure is shown and the page goes on without voice.
 * The speaking indicator reads the levels: yours, and how many nearby voices are audible.
 */
import { useEffect, useState } from "preact/hooks";
import type { ExpoSession } from "../../../../client-sdk/ExpoSession.ts";
import { VoiceSession } from "../../../../client-sdk/VoiceSession.ts";
import { expoVoiceLink } from "../../../../client-sdk/voice/links.ts";
import { nodeHasVoice } from "../../app/nodeHealth.ts";
import { describeError } from "./describe.ts";

/** A level above this counts as speaking (audioLevel is 0..1). */
const SPEAKING = 0.02;

export function VoicePanel(props: { expo: ExpoSession }) {
  const [available, setAvailable] = useState<boolean | undefined>();
  const [voice, setVoice] = useState<VoiceSession | undefined>();
  const [joining, setJoining] = useState(false);
  const [muted, setMuted] = useState(false);
  const [problem, setProblem] = useState("");
  const [levels, setLevels] = useState<{ self: number; speaking: number }>({ self: 0, speaking: 0 });

  useEffect(() => { void nodeHasVoice().then(setAvailable); }, []);
  useEffect(() => () => { void voice?.close(); }, [voice]);
  useEffect(() => {
    if (!voice) return;
    const offError = voice.on("error", (error) => setProblem(error.message));
    const timer = setInterval(() => {
      void voice.levels().then((map) => {
        let speaking = 0;
        for (const [feed, level] of map) if (feed !== "self" && level > SPEAKING) speaking++;
        setLevels({ self: map.get("self") ?? 0, speaking });
      }).catch(() => {});
    }, 250);
    return () => { offError(); clearInterval(timer); };
  }, [voice]);

  if (available === undefined) return null;
  if (!available) return null;

  const join = async () => {
    setJoining(true);
    setProblem("");
    try {
      setVoice(await VoiceSession.start(expoVoiceLink(props.expo), { speak: true }));
      setMuted(false);
    } catch (error) {
      const why = describeError(error);
      setProblem(`Voice is not available (${why.codeName}): ${why.message}. The hall works without it.`);
    } finally {
      setJoining(false);
    }
  };
  const toggleMute = async () => {
    if (!voice) return;
    await voice.mute(!muted).catch(() => {});
    setMuted(voice.isMuted);
  };
  const leave = async () => {
    const current = voice;
    setVoice(undefined);
    await current?.close().catch(() => {});
  };

  const talking = !muted && levels.self > SPEAKING;
  return (
    <section class="card voice" aria-labelledby="expo-voice-title">
      <h2 id="expo-voice-title">Voice</h2>
      {!voice ? (
        <button type="button" onClick={join} disabled={joining}>{joining ? "Joining voice…" : "Join voice"}</button>
      ) : (
        <div class="row">
          <button type="button" onClick={toggleMute} aria-pressed={muted}>{muted ? "Unmute" : "Mute"}</button>
          <button type="button" onClick={leave}>Leave voice</button>
          <span class={`speaking${talking ? " on" : ""}`}>
            <meter min={0} max={1} value={muted ? 0 : levels.self} aria-label="Your microphone level" />
            {muted ? "Muted" : talking ? "Speaking" : "Silent"} · {levels.speaking} nearby speaking
          </span>
        </div>
      )}
      {problem && <p class="error" role="alert">{problem}</p>}
    </section>
  );
}
