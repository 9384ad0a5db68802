/* The Twitch embed (#embed): Twitch's player script, loaded after the page itself so that a
 * slow or unreachable Twitch never holds the page up, and a plain note when it cannot load. A
 * simulated channel (data-demo="1") has no stream to embed.
 */

const LOAD_TIMEOUT_MS = 15000;

/** Load Twitch's player into #embed-player, or say why it is not there. */
export function loadEmbed() {
  const box = document.getElementById("embed");
  const status = document.getElementById("embed-status");
  if (!box || box.getAttribute("data-demo") === "1") return; // a simulated channel: no stream
  let failed = false;
  function fail() {
    failed = true;
    box.setAttribute("data-state", "failed");
    status.textContent =
      "Twitch’s player could not load (offline, or blocked by the browser). " +
      "The events beside it still update live.";
  }
  status.textContent = "Loading the Twitch player…";
  box.setAttribute("data-state", "loading");
  const timer = setTimeout(fail, LOAD_TIMEOUT_MS);
  const script = document.createElement("script");
  script.src = "https://embed.twitch.tv/embed/v1.js";
  script.async = true;
  script.onerror = () => {
    clearTimeout(timer);
    fail();
  };
  script.onload = () => {
    clearTimeout(timer);
    if (failed) return;
    if (!window.Twitch || typeof window.Twitch.Embed !== "function") return fail();
    try {
      new window.Twitch.Embed(document.getElementById("embed-player"), {
        channel: box.getAttribute("data-channel"),
        layout: "video-with-chat",
        width: "100%",
        height: "100%",
        parent: [box.getAttribute("data-parent")],
      });
      box.setAttribute("data-state", "ready");
    } catch (error) {
      fail();
    }
  };
  document.head.appendChild(script);
}
