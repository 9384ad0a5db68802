/* The streamer page's entry point: the Twitch embed, and the latest events kept live over
 * Socket.IO. It reads the server's data blocks and starts the page's parts (static/page/) in
 * the order they depend on each other.
 *
 * The first paint is the server-rendered list (from the same data as #initial-state). After
 * that the page talks to SEV only over the websocket (static/page/socket.js), except when the
 * viewer asks for older events or the first paint tops itself up (static/page/history.js).
 * Events are placed by seq, never by arrival (static/page/list.js); the decisions are pure
 * functions in static/feed.js, static/watching.js and static/older.js.
 *
 * An ES module; socket.io.min.js, a classic script before it, defines the global `io`.
 */
import { MAX_EVENTS, oldestFirst } from "./feed.js";
import * as alerts from "./page/alerts.js";
import { readJson } from "./page/dom.js";
import { loadEmbed } from "./page/embed.js";
import * as filters from "./page/filters.js";
import * as history from "./page/history.js";
import * as kinds from "./page/kinds.js";
import * as list from "./page/list.js";
import * as socket from "./page/socket.js";
import * as status from "./page/status.js";
import * as stream from "./page/stream.js";
import * as times from "./page/times.js";
import { initialMark } from "./watching.js";

function start(root) {
  const initial = readJson("initial-state") || { streamer: null, events: [] };
  // From sev/events/ and the server's settings: how each type is shown, the kinds' state
  // texts, how many events a catch-up holds at most and how many the list keeps.
  const table = readJson("event-kinds");
  const settings = readJson("page-settings") || {};
  const maxEvents = settings.page_size || MAX_EVENTS;
  const login = root.getAttribute("data-login");
  const streamerId = root.getAttribute("data-id");

  status.init(settings);
  times.init(root);
  filters.init({ root, eventOf: list.eventOf });
  alerts.init({ kinds: table });
  history.init({ login, streamerId, kinds: table, maxEvents });
  list.init({ kinds: table, maxEvents, onPlaced: history.showOlderButton });
  stream.init(settings);
  kinds.init(settings);

  const initialEvents = oldestFirst(initial.events, streamerId);
  list.adopt(initialEvents);
  socket.init({ login, streamerId, settings, maxEvents, mark: initialMark(initialEvents) });
  times.tick();
  filters.applyFilter();
  history.showOlderButton();
  times.keepCurrent();
  status.setConnection("connecting");
  // Topped up before the live connection, so that "live" means the list is complete.
  history
    .fillList(initialEvents)
    .catch(() => {}) // not topped up: the list stays as the server rendered it
    .finally(() => {
      times.tick();
      socket.connect();
    });
}

// The streamer page, or the page of a channel SEV does not follow yet (embed only, no events).
const root = document.getElementById("streamer");
if (root) start(root);
if (root || document.getElementById("streamer-unfollowed")) {
  // After `load`, so that a slow or unreachable Twitch never holds up the page itself.
  if (document.readyState === "complete") loadEmbed();
  else window.addEventListener("load", loadEmbed);
}
