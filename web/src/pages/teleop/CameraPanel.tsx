/**
 * The machine's camera, through the node's media server (CameraView), offered only when
 * the node runs voice and cameras; any failure leaves a note, never a broken page.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { CameraView, type RoomSession } from "../../../../client-sdk/index.ts";
import { nodeHasVoice } from "../../app/nodeHealth.ts";

export function CameraPanel(props: { session: RoomSession; deviceId: string }) {
  const [available, setAvailable] = useState<boolean>();
  const [view, setView] = useState<CameraView>();
  const [status, setStatus] = useState("");
  const video = useRef<HTMLVideoElement>(null);

  useEffect(() => { void nodeHasVoice().then(setAvailable); }, []);
  useEffect(() => () => view?.close(), [view]);
  useEffect(() => { setView(undefined); setStatus(""); }, [props.deviceId]);
  useEffect(() => { if (view && video.current) video.current.srcObject = view.stream; }, [view]);

  const watch = () => {
    setStatus("Connecting to the camera…");
    CameraView.watch(props.session, props.deviceId).then(
      (watching) => { setView(watching); setStatus(""); },
      (error: unknown) => setStatus(`No camera picture: ${(error as Error)?.message ?? String(error)}`),
    );
  };

  return (
    <section class="card camera" aria-labelledby="camera-title">
      <h2 id="camera-title">Camera</h2>
      {available === undefined && <p class="muted">Checking for cameras…</p>}
      {available === false && <p class="muted" data-testid="camera-note">Cameras are off on this node (no media server): drive by telemetry.</p>}
      {available && !view && <button type="button" onClick={watch}>Show {props.deviceId}'s camera</button>}
      {view && (
        <>
          <video ref={video} autoplay muted playsInline aria-label={`${props.deviceId} camera`} />
          <button type="button" onClick={() => setView(undefined)}>Hide camera</button>
        </>
      )}
      {status && <p class="muted" role="status">{status}</p>}
    </section>
  );
}
