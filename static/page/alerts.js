/* Alerts: a chime and a desktop notification per event family, off until the viewer asks,
 * with a mute for both; the choice is kept in localStorage (static/feed.js reads and writes
 * it). Sound and notification permission start only from the viewer's own click, as browsers
 * require.
 */
import {
  ALERT_KEY,
  alertsFor,
  displayOf,
  notificationOf,
  readAlerts,
  writeAlerts,
} from "../feed.js";

const state = {
  kinds: null, // the server's display table (sev/events/display.py)
  alerts: readAlerts(null), // {sound, notify, muted}
  audio: null, // the page's one AudioContext, once a click made it
  note: null, // #alerts-note
  mute: null, // #alerts-mute
};

function saveAlerts() {
  try {
    window.localStorage.setItem(ALERT_KEY, writeAlerts(state.alerts));
  } catch (error) {
    // Kept for this page only.
  }
}

/* The page's one AudioContext, made (or resumed) from a click: browsers start sound only so. */
function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (state.audio === null) state.audio = new Context();
  if (state.audio.state === "suspended") state.audio.resume().catch(() => {});
  return state.audio;
}

/* A short two-note chime, generated: no sound file to fetch. */
function chime() {
  const context = audioContext();
  if (!context) return;
  const start = context.currentTime;
  [880, 1320].forEach((frequency, index) => {
    const tone = context.createOscillator();
    const gain = context.createGain();
    const at = start + index * 0.12;
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, at);
    gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
    tone.connect(gain).connect(context.destination);
    tone.start(at);
    tone.stop(at + 0.22);
  });
}

/** A live event shown now as `item`: its kind's sound and notification, if asked for. */
export function alertFor(event, item) {
  if (!item || item.hidden) return; // a burst's recipient, or a kind or amount filtered out
  const wanted = alertsFor(state.alerts, item.getAttribute("data-family"));
  try {
    if (wanted.sound) chime();
    if (wanted.notify && "Notification" in window && Notification.permission === "granted") {
      const shown = notificationOf(event, displayOf(state.kinds, String(event.type)).label);
      new Notification(shown.title, { body: shown.body, tag: shown.tag });
    }
  } catch (error) {
    // No sound device, or notifications refused after all: the list still shows the event.
  }
}

function showMute() {
  state.mute.setAttribute("aria-pressed", state.alerts.muted ? "true" : "false");
}

async function askToNotify(box) {
  if (!("Notification" in window)) {
    state.note.textContent = "This browser cannot show desktop notifications.";
    return false;
  }
  if (Notification.permission === "granted") return true;
  // Asked from the viewer's own click, as browsers require.
  const answer = await Notification.requestPermission();
  if (answer === "granted") return true;
  state.note.textContent = "Notifications are blocked for SEV in this browser's settings.";
  box.checked = false;
  return false;
}

/** Read the stored alerts and wire the alerts bar; `kinds` labels the notifications. */
export function init({ kinds }) {
  state.kinds = kinds;
  const bar = document.getElementById("alerts-bar");
  state.note = document.getElementById("alerts-note");
  state.mute = document.getElementById("alerts-mute");
  try {
    state.alerts = readAlerts(window.localStorage.getItem(ALERT_KEY));
  } catch (error) {
    // As for the filters: the alerts still work for this page.
  }
  if (!bar || !state.mute) return;
  for (const box of bar.querySelectorAll('input[name="sound"], input[name="notify"]')) {
    const chosen = state.alerts[box.name];
    box.checked = chosen.has(box.value);
    box.addEventListener("change", async () => {
      state.note.textContent = "";
      if (box.checked && box.name === "sound") audioContext();
      if (box.checked && box.name === "notify" && !(await askToNotify(box))) return;
      if (box.checked) chosen.add(box.value);
      else chosen.delete(box.value);
      saveAlerts();
    });
  }
  state.mute.addEventListener("click", () => {
    state.alerts.muted = !state.alerts.muted;
    if (!state.alerts.muted) audioContext();
    showMute();
    saveAlerts();
  });
  showMute();
  bar.hidden = false;
}
