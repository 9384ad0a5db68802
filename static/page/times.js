/* The events' relative times ("5 minutes ago"), kept current by a clock on the page itself:
 * the text is recomputed from each <time>'s datetime, nothing is asked of the server.
 */
import { relativeText } from "../feed.js";

const TICK_MS = 5000;

const state = {
  root: null, // the page's #streamer element, whose event lists hold the times
  absolute:
    typeof Intl !== "undefined"
      ? new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" })
      : null,
};

/** Keep the times under `root`. */
export function init(root) {
  state.root = root;
}

/** One <time>'s text as seen at `now` (ms), and its absolute date as its title. */
export function updateTime(time, now) {
  const then = Date.parse(time.getAttribute("datetime"));
  if (isNaN(then)) return;
  const text = relativeText(then, now);
  if (time.textContent !== text) time.textContent = text;
  if (state.absolute && !time.title) time.title = state.absolute.format(new Date(then));
}

/** Every event's time, now. */
export function tick() {
  const now = Date.now();
  for (const time of state.root.querySelectorAll(".events time[datetime]")) updateTime(time, now);
}

/** Update the times every few seconds from now on. */
export function keepCurrent() {
  window.setInterval(tick, TICK_MS);
}
