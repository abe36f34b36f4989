/**
 * SDP details of voice: Opus in stereo both ways, and waiting for ICE candidates so each
 * description goes to Janus whole (it takes them in the SDP; no trickling needed).
 *
 * @example
 *   await pc.setLocalDescription({ type: "offer", sdp: withStereoOpus(offer.sdp!) });
 *   await whenGathered(pc);
 */

/** `sdp` with `stereo=1;sprop-stereo=1` on every Opus payload's fmtp line. */
export function withStereoOpus(sdp: string): string {
  const opus = new Set<string>();
  for (const match of sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000\/2\r?$/gim)) opus.add(match[1]!);
  return sdp.split(/\r\n/).map((line) => {
    const fmtp = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (!fmtp || !opus.has(fmtp[1]!)) return line;
    const params = fmtp[2]!.split(";").filter((param) => !/^\s*(sprop-)?stereo=/.test(param));
    return `a=fmtp:${fmtp[1]} ${[...params, "stereo=1", "sprop-stereo=1"].join(";")}`;
  }).join("\r\n");
}

/** Resolves once `pc` has gathered its candidates (at most `ms`: what it has by then goes). */
export function whenGathered(pc: RTCPeerConnection, ms = 2000): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}
