/* The live connection to SEV over Socket.IO. On every (re)connect the page sends `watch` with
 * the highest seq below which it holds every event (its resume mark, static/feed.js
 * ResumePoint), then takes `event`s as they happen. A hole in the live seqs that stays open is
 * filled from the store (`fill`), never skipped. A `session_ended` (or a refused connection)
 * stops the page reconnecting. The decisions are static/watching.js's; this module applies them.
 *
 * socket.io.min.js, a classic script before the page's module, defines the global `io`.
 */
import {
  ResumePoint,
  announcement,
  catchUpNote,
  confirmedByAck,
  isEvent,
  oldestFirst,
} from "../feed.js";
import { fillAnswered, holeRange, retryDelay, watchOutcome } from "../watching.js";
import { alertFor } from "./alerts.js";
import { refreshKinds, showNotice, showSessionEnded } from "./kinds.js";
import { itemOf, place } from "./list.js";
import { announce, setConnection, showNote } from "./status.js";
import { noteStream } from "./stream.js";

const WATCH_TIMEOUT_MS = 10000;
// A hole in the seqs (n+2 arrived, n+1 not yet) closes within milliseconds when it is only
// out-of-order delivery from several processes; one still open after this long is filled
// from the store (`fill`), never skipped.
const HOLE_GRACE_MS = 1000;
// SEV's event to every open page of a user whose session ended (sev/live/server.py).
const SESSION_ENDED = "session_ended";

const state = {
  login: "",
  streamerId: null,
  settings: {}, // the page settings: catch_up_limit
  maxEvents: 0,
  resume: new ResumePoint(), // `after` for the next watch
  socket: null,
  generation: 0, // one per connection: an ack from an older one is ignored
  watchTimer: null,
  watchFailures: 0,
  holeTimer: null,
  sessionEnded: false,
};

/** Resume from `mark`: the highest seq the first paint holds (null for none). */
export function init({ login, streamerId, settings, maxEvents, mark }) {
  Object.assign(state, { login, streamerId, settings, maxEvents });
  state.resume.mark = mark;
}

function noteSeen(seq) {
  state.resume.see(seq);
  waitForHole();
}

function confirm(seq) {
  state.resume.confirm(seq);
  waitForHole();
}

function waitForHole() {
  clearTimeout(state.holeTimer);
  state.holeTimer = null;
  if (state.resume.waiting) state.holeTimer = setTimeout(fillHole, HOLE_GRACE_MS);
}

/* A hole still open after the grace: ask the store for what lies between the mark and the
 * lowest event above it. The store never shows seq N+1 before N, so its answer is everything
 * there will ever be in between; with the socket down, the next watch's ack fills it. */
function fillHole() {
  const { socket, resume } = state;
  if (!socket || !socket.connected || !resume.waiting) return;
  const mine = state.generation;
  const { after, before } = holeRange(
    resume.mark,
    resume.lowestAhead,
    state.settings.catch_up_limit
  );
  socket
    .timeout(WATCH_TIMEOUT_MS)
    .emit("fill", { streamer: state.login, after, before }, (error, ack) => {
      if (mine !== state.generation) return; // reconnected: the new watch's ack fills it
      if (!fillAnswered(error, ack)) {
        state.holeTimer = setTimeout(fillHole, HOLE_GRACE_MS);
        return;
      }
      const events = oldestFirst(ack.events, state.streamerId);
      events.forEach(noteStream);
      const added = events.filter((event) => place(event, true));
      confirm(before - 1);
      const text = announcement(added);
      if (text) announce(text);
    });
}

function applyAck(ack, sentAfter) {
  if (ack.streamer) refreshKinds(ack.streamer);
  const events = oldestFirst(ack.events, state.streamerId);
  events.forEach(noteStream);
  const added = events.filter((event) => place(event, true));
  if (ack.gap) showNote(catchUpNote(state.settings.catch_up_limit, state.maxEvents));
  // The ack holds every event after `sentAfter` (or the newest ones): nothing below is missing.
  confirm(confirmedByAck(sentAfter, events));
  const text = announcement(added);
  if (text) announce(text);
}

function watch() {
  clearTimeout(state.watchTimer);
  const socket = state.socket;
  if (!socket.connected) return;
  const mine = state.generation;
  const sentAfter = state.resume.mark;
  socket
    .timeout(WATCH_TIMEOUT_MS)
    .emit("watch", { streamer: state.login, after: sentAfter }, (error, ack) => {
      if (mine !== state.generation || !socket.connected) return; // a reconnect watches anew
      const outcome = watchOutcome(error, ack);
      if (!outcome.ok) {
        if (outcome.retry) {
          state.watchFailures += 1;
          const delay = retryDelay(state.watchFailures);
          setConnection("reconnecting", outcome.reason);
          state.watchTimer = setTimeout(watch, delay);
        } else {
          setConnection("offline", outcome.reason);
        }
        return;
      }
      state.watchFailures = 0;
      applyAck(ack, sentAfter);
      setConnection("live");
    });
}

/* This viewer's session ended (logged out in another tab, or Twitch refused the login): SEV
 * disconnects the socket; the page says why and leads to the login, and stops reconnecting. */
function endSession(reason) {
  if (state.sessionEnded) return;
  state.sessionEnded = true;
  clearTimeout(state.watchTimer);
  state.socket.disconnect();
  setConnection("offline", "logged out");
  showSessionEnded(reason);
}

function receive(event) {
  if (!isEvent(event, state.streamerId)) return;
  noteSeen(event.seq);
  noteStream(event);
  if (place(event, true)) {
    announce(announcement([event]));
    alertFor(event, itemOf(event.seq));
  }
}

/** Open the socket and keep it open: watch on every connect, events as they come. */
export function connect() {
  if (typeof io !== "function") {
    setConnection("offline", "SEV's update script could not load");
    return;
  }
  // Websocket only: SEV refuses HTTP long-polling, and polling is what this page must not do.
  const socket = io({
    transports: ["websocket"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  state.socket = socket;
  socket.on("connect", () => {
    state.generation += 1;
    state.watchFailures = 0;
    setConnection("connecting", "catching up");
    watch();
  });
  socket.on("event", receive);
  socket.on("notice", showNotice);
  socket.on(SESSION_ENDED, (notice) => endSession(notice && notice.reason));
  socket.on("disconnect", (reason) => {
    state.generation += 1;
    clearTimeout(state.watchTimer);
    if (state.sessionEnded) return;
    if (reason === "io server disconnect") socket.connect(); // SEV dropped us: come back
    setConnection(navigator.onLine === false ? "offline" : "reconnecting");
  });
  socket.on("connect_error", () => {
    if (socket.active) {
      setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    } else {
      // Refused, not lost: the session is gone. Retrying would be refused again.
      endSession("Your SEV session has ended: log in again to see live events.");
    }
  });
  window.addEventListener("offline", () => setConnection("offline", "no network"));
  window.addEventListener("online", () => {
    if (!socket.connected) setConnection("reconnecting");
  });
}
