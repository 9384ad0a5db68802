/* What the streamer page says about itself: the screen reader's announcements (#announcer), the
 * note above the list (#events-note) and the connection line (#connection), whose words are the
 * server's (sev/streamers.py): never "Live", which is the stream's own state in the header.
 */

const state = {
  announcer: null,
  eventsNote: null,
  connection: null,
  words: {}, // connection state → the server's words for it
};

/** Find the page's status nodes and take the connection words from the page settings. */
export function init(settings) {
  state.announcer = document.getElementById("announcer");
  state.eventsNote = document.getElementById("events-note");
  state.connection = document.getElementById("connection");
  state.words = settings.connection_states || {};
}

/** Have the screen reader read `text`. */
export function announce(text) {
  const announcer = state.announcer;
  // A changed text is what gets read: the same sentence twice differs by a trailing space.
  announcer.textContent = announcer.textContent === text ? text + "\u00a0" : text;
}

/** Show `text` above the list (nothing: no note). */
export function showNote(text) {
  state.eventsNote.textContent = text || "";
  state.eventsNote.hidden = !text;
}

/** Whether this page receives events live, and why not when it does not. */
export function setConnection(connectionState, detail) {
  const connection = state.connection;
  connection.setAttribute("data-state", connectionState);
  const text = connection.querySelector(".connection-text");
  const words = state.words[connectionState] || connectionState;
  text.textContent = detail ? words + " · " + detail : words;
}
