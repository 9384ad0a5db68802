/* The stream's own state in the header (#stream): live or offline, title and category. The
 * server renders it first (#stream-state); stream.online/offline and channel.update events
 * move it on, older ones never move it back (static/feed.js streamAfter decides).
 */
import { streamAfter } from "../feed.js";
import { readJson } from "./dom.js";

const state = {
  stream: null, // as sev/streamers.py read_stream renders it
  words: {}, // stream status → the server's words for it
  line: null,
};

/** Take the first state from the page and the words from the page settings. */
export function init(settings) {
  state.stream = readJson("stream-state");
  state.words = settings.stream_states || {};
  state.line = document.getElementById("stream");
}

/** Show the stream's state after `event`, when the event changes it. */
export function noteStream(event) {
  const next = streamAfter(state.stream, event);
  if (next === null || !state.line) return;
  state.stream = next;
  const line = state.line;
  line.setAttribute("data-status", String(next.status));
  const parts = [
    [".stream-status", state.words[next.status] || String(next.status)],
    [".stream-title", next.title],
    [".stream-category", next.category],
  ];
  for (const [selector, text] of parts) {
    const node = line.querySelector(selector);
    if (!node) continue;
    node.textContent = text || "";
    if (selector !== ".stream-status") node.hidden = !text;
  }
}
