/* The streamer page: the Twitch embed, and the latest events kept live over Socket.IO.
 *
 * The first paint is the server-rendered list (from the same data as #initial-state). After
 * that the page talks to SEV only over the websocket: `watch` on every (re)connect with the
 * highest seq it holds, then `event`s as they happen. Events are placed by seq, never by
 * arrival, and a seq already held is dropped, so a reconnect's catch-up and the live stream can
 * overlap freely. Event text is untrusted: nodes are built with textContent, never as HTML.
 */
(function () {
  "use strict";

  var DEFAULT_MAX_EVENTS = 10;
  var TICK_MS = 5000;
  var WATCH_TIMEOUT_MS = 10000;
  // A hole in the seqs (n+2 arrived, n+1 not yet) closes within milliseconds when it is only
  // out-of-order delivery; one still open after this long is treated as no event at all.
  var HOLE_GRACE_MS = 3000;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var root = document.getElementById("streamer");
  if (!root) return;
  var initial = readJson("initial-state") || { streamer: null, events: [] };
  var kinds = readJson("event-kinds");
  // From the server: the kinds' state texts, how many events a catch-up holds at most, and how
  // many the list keeps.
  var settings = readJson("page-settings") || {};
  var kindStates = settings.kind_states || {};
  var login = root.getAttribute("data-login");
  var streamerId = root.getAttribute("data-id");
  var list = document.getElementById("events");
  var emptyNote = document.getElementById("events-empty");
  var eventsNote = document.getElementById("events-note");
  var announcer = document.getElementById("announcer");
  var connection = document.getElementById("connection");
  var notices = document.getElementById("notices");
  var MAX_EVENTS = settings.page_size || DEFAULT_MAX_EVENTS;

  function readJson(id) {
    var element = document.getElementById(id);
    if (!element) return null;
    try {
      return JSON.parse(element.textContent);
    } catch (error) {
      return null;
    }
  }

  // ---- the list ---------------------------------------------------------------------------

  var shown = new Map(); // seq → <li>, at most MAX_EVENTS, the highest seqs held
  // Every event with seq ≤ watermark is known to the page; `after` for the next watch.
  var watermark = null;
  var ahead = new Set(); // seqs received above the watermark (a lower one may be in flight)
  var holeTimer = null;

  function isEvent(event) {
    return (
      event !== null &&
      typeof event === "object" &&
      typeof event.seq === "number" &&
      isFinite(event.seq) &&
      (!event.broadcaster || !streamerId || event.broadcaster.id === streamerId)
    );
  }

  function lowestShown() {
    var lowest = Infinity;
    shown.forEach(function (_, seq) {
      if (seq < lowest) lowest = seq;
    });
    return lowest;
  }

  /* Put one event in its place by seq; false when it is already held or too old to show. */
  function place(event, animate) {
    if (shown.has(event.seq)) return false;
    if (shown.size >= MAX_EVENTS && event.seq < lowestShown()) return false;
    var item = renderEvent(event);
    var before = null;
    for (var child = list.firstElementChild; child; child = child.nextElementSibling) {
      if (Number(child.getAttribute("data-seq")) < event.seq) {
        before = child;
        break;
      }
    }
    list.insertBefore(item, before);
    shown.set(event.seq, item);
    while (shown.size > MAX_EVENTS) {
      var lowest = lowestShown();
      shown.get(lowest).remove();
      shown.delete(lowest);
    }
    if (animate && shown.has(event.seq)) {
      item.classList.add("event-new");
      item.addEventListener(
        "animationend",
        function () {
          item.classList.remove("event-new");
        },
        { once: true }
      );
    }
    emptyNote.hidden = shown.size > 0;
    return shown.has(event.seq);
  }

  // How a type is shown, from sev/events.py's table; the generic display for an unknown type.
  function kindOf(type) {
    var types = (kinds && kinds.types) || {};
    if (Object.prototype.hasOwnProperty.call(types, type)) return types[type];
    return (kinds && kinds.other) || {};
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function renderEvent(event) {
    var kind = kindOf(String(event.type));
    var item = element("li", "event");
    item.setAttribute("data-seq", String(event.seq));
    item.setAttribute("data-id", String(event.id));
    item.setAttribute("data-type", String(event.type));
    item.setAttribute("data-family", String(kind.family || ""));

    var icon = element("span", "event-icon");
    icon.setAttribute("aria-hidden", "true");
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "20");
    svg.setAttribute("height", "20");
    var use = document.createElementNS(SVG_NS, "use");
    use.setAttribute("href", "#" + String(kind.icon || ""));
    svg.appendChild(use);
    icon.appendChild(svg);
    item.appendChild(icon);

    var body = element("div", "event-body");
    body.appendChild(element("p", "event-summary", event.summary || event.type + " event"));
    var meta = element("p", "event-meta");
    meta.appendChild(element("span", "event-kind", kind.label));
    if (event.actor && event.actor.name) {
      meta.appendChild(element("span", "event-actor", event.actor.name));
    }
    var time = element("time");
    time.setAttribute("datetime", String(event.occurred_at || ""));
    updateTime(time, Date.now());
    meta.appendChild(time);
    body.appendChild(meta);
    item.appendChild(body);
    return item;
  }

  // ---- what the page knows (the `after` of the next watch) ----------------------------------

  function noteSeen(seq) {
    if (watermark === null || seq <= watermark) return;
    ahead.add(seq);
    advance();
  }

  function raiseWatermark(seq) {
    if (watermark === null || seq > watermark) watermark = seq;
    ahead.forEach(function (held) {
      if (held <= watermark) ahead.delete(held);
    });
    advance();
  }

  function advance() {
    while (ahead.has(watermark + 1)) {
      watermark += 1;
      ahead.delete(watermark);
    }
    clearTimeout(holeTimer);
    holeTimer = null;
    if (ahead.size > 0) {
      holeTimer = setTimeout(function () {
        // Still open: the seqs simply skip here (the store promises order, not density).
        var highest = Math.max.apply(null, Array.from(ahead));
        if (socket && socket.connected) raiseWatermark(highest);
      }, HOLE_GRACE_MS);
    }
  }

  // ---- announcing, notes, connection state --------------------------------------------------

  function announce(text) {
    // A changed text is what gets read: the same sentence twice differs by a trailing space.
    announcer.textContent = announcer.textContent === text ? text + "\u00a0" : text;
  }

  function showNote(text) {
    eventsNote.textContent = text || "";
    eventsNote.hidden = !text;
  }

  var STATES = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  };

  function setConnection(state, detail) {
    connection.setAttribute("data-state", state);
    var text = connection.querySelector(".connection-text");
    text.textContent = detail ? STATES[state] + " · " + detail : STATES[state];
  }

  // ---- relative times that keep themselves current ----------------------------------------

  var relative =
    typeof Intl !== "undefined" && Intl.RelativeTimeFormat
      ? new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "long" })
      : null;
  var absolute =
    typeof Intl !== "undefined"
      ? new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" })
      : null;

  function relativeText(then, now) {
    var seconds = Math.round((now - then) / 1000);
    if (seconds < 10) return "just now";
    if (!relative) return new Date(then).toLocaleString();
    if (seconds < 60) return relative.format(-seconds, "second");
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return relative.format(-minutes, "minute");
    var hours = Math.round(minutes / 60);
    if (hours < 24) return relative.format(-hours, "hour");
    return relative.format(-Math.round(hours / 24), "day");
  }

  function updateTime(time, now) {
    var then = Date.parse(time.getAttribute("datetime"));
    if (isNaN(then)) return;
    var text = relativeText(then, now);
    if (time.textContent !== text) time.textContent = text;
    if (absolute && !time.title) time.title = absolute.format(new Date(then));
  }

  function tick() {
    var now = Date.now();
    var times = list.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i += 1) updateTime(times[i], now);
  }

  // ---- the "what this streamer shares" panel ------------------------------------------------

  function showKind(item, state, why) {
    item.setAttribute("data-state", state);
    var label = item.querySelector(".kind-state");
    if (label) label.textContent = kindStates[state] || state;
    if (why) item.title = why;
  }

  function refreshKinds(streamer) {
    if (!streamer || !Array.isArray(streamer.kinds)) return;
    streamer.kinds.forEach(function (kind, index) {
      var item = document.querySelector('.kind[data-index="' + index + '"]');
      if (item && item.getAttribute("data-type") === kind.type) {
        showKind(item, String(kind.state), kind.held || kind.status || "");
      }
    });
    showHeldNotices(streamer.notices);
  }

  // Why kinds are held back (Twitch's limits, a removed account), as the server words it.
  function showHeldNotices(texts) {
    if (!Array.isArray(texts)) return;
    var old = notices.querySelectorAll(".notice-held");
    for (var i = 0; i < old.length; i += 1) old[i].remove();
    texts.forEach(function (text) {
      var item = element("li", "notice notice-held");
      item.appendChild(element("span", "notice-text", String(text)));
      notices.appendChild(item);
    });
  }

  var REASONS = {
    authorization_revoked: "the streamer withdrew SEV's access",
    user_removed: "the Twitch account no longer exists",
    notification_failures_exceeded: "SEV missed too many deliveries; it will subscribe again",
    version_removed: "Twitch retired this event version",
    moderator_removed: "SEV lost the moderator access this needs; it asks again within the hour",
    beta_maintenance: "Twitch paused these events for maintenance; SEV asks again within the hour",
    chat_user_banned: "the account these events need was banned from the chat",
  };

  function showNotice(notice) {
    if (!notice || notice.kind !== "revocation") return;
    var type = String(notice.type || "");
    var status = String(notice.status || "revoked");
    var labels = [];
    var items = document.querySelectorAll(".kind");
    for (var i = 0; i < items.length; i += 1) {
      if (items[i].getAttribute("data-type") === type) {
        showKind(items[i], "stopped", status);
        var label = items[i].querySelector(".kind-label");
        if (label && labels.indexOf(label.textContent) < 0) labels.push(label.textContent);
      }
    }
    var what = labels.length ? labels.join(" and ") : type;
    var text = "Twitch stopped sending " + what + ": " + (REASONS[status] || status) + ".";
    var item = element("li", "notice");
    item.appendChild(element("span", "notice-text", text));
    var dismiss = element("button", "button button-quiet notice-dismiss", "Dismiss");
    dismiss.type = "button";
    dismiss.addEventListener("click", function () {
      item.remove();
    });
    item.appendChild(dismiss);
    notices.appendChild(item);
  }

  // ---- the socket ---------------------------------------------------------------------------

  var socket = null;
  var generation = 0; // one per connection: an ack from an older one is ignored
  var watchTimer = null;
  var watchFailures = 0;

  function applyAck(ack, sentAfter) {
    if (ack.streamer) refreshKinds(ack.streamer);
    var events = Array.isArray(ack.events) ? ack.events.filter(isEvent) : [];
    // Oldest first, so each announcement and animation follows the order things happened.
    events.sort(function (a, b) {
      return a.seq - b.seq;
    });
    var added = [];
    events.forEach(function (event) {
      if (place(event, true)) added.push(event);
    });
    var highest = events.length ? events[events.length - 1].seq : null;
    if (ack.gap) {
      showNote(
        "More than " +
          settings.catch_up_limit +
          " events happened while this page was disconnected; showing the latest " +
          MAX_EVENTS +
          "."
      );
    }
    // The ack holds every event after `sentAfter` (or the newest ones): nothing below is missing.
    var confirmed = Math.max(sentAfter === null ? 0 : sentAfter, highest === null ? 0 : highest);
    raiseWatermark(confirmed);
    if (added.length === 1) {
      announce("New event: " + added[0].summary);
    } else if (added.length > 1) {
      announce(added.length + " new events. Latest: " + added[added.length - 1].summary);
    }
  }

  function watch() {
    clearTimeout(watchTimer);
    if (!socket.connected) return;
    var mine = generation;
    var sentAfter = watermark;
    socket
      .timeout(WATCH_TIMEOUT_MS)
      .emit("watch", { streamer: login, after: sentAfter }, function (error, ack) {
        if (mine !== generation || !socket.connected) return; // a reconnect watches anew
        if (error || !ack || ack.error) {
          var retry = Boolean(error) || Boolean(ack && ack.retry);
          var reason = ack && ack.error ? String(ack.error) : "SEV did not answer";
          if (retry) {
            watchFailures += 1;
            var delay = Math.min(1000 * Math.pow(2, watchFailures - 1), 10000);
            setConnection("reconnecting", reason);
            watchTimer = setTimeout(watch, delay);
          } else {
            setConnection("offline", reason);
          }
          return;
        }
        watchFailures = 0;
        applyAck(ack, sentAfter);
        setConnection("live");
      });
  }

  function connect() {
    if (typeof io !== "function") {
      setConnection("offline", "the live connection could not load");
      return;
    }
    // Websocket only: SEV refuses HTTP long-polling, and polling is what this page must not do.
    socket = io({
      transports: ["websocket"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    socket.on("connect", function () {
      generation += 1;
      watchFailures = 0;
      setConnection("connecting", "catching up");
      watch();
    });
    socket.on("event", function (event) {
      if (!isEvent(event)) return;
      noteSeen(event.seq);
      if (place(event, true)) announce("New event: " + event.summary);
    });
    socket.on("notice", showNotice);
    socket.on("disconnect", function (reason) {
      generation += 1;
      clearTimeout(watchTimer);
      if (reason === "io server disconnect") socket.connect(); // SEV dropped us: come back
      setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    });
    socket.on("connect_error", function () {
      if (socket.active) {
        setConnection(navigator.onLine === false ? "offline" : "reconnecting");
      } else {
        // Refused, not lost: the session is gone. Retrying would be refused again.
        setConnection("offline", "log in again to see live events");
      }
    });
    window.addEventListener("offline", function () {
      setConnection("offline", "no network");
    });
    window.addEventListener("online", function () {
      if (!socket.connected) setConnection("reconnecting");
    });
  }

  // ---- the Twitch embed ---------------------------------------------------------------------

  function loadEmbed() {
    var box = document.getElementById("embed");
    var status = document.getElementById("embed-status");
    if (!box || box.getAttribute("data-demo") === "1") return; // a simulated channel: no stream
    var failed = false;
    function fail() {
      failed = true;
      box.setAttribute("data-state", "failed");
      status.textContent =
        "Twitch’s player could not load (offline, or blocked by the browser). " +
        "The events beside it still update live.";
    }
    status.textContent = "Loading the Twitch player…";
    box.setAttribute("data-state", "loading");
    var timer = setTimeout(fail, 15000);
    var script = document.createElement("script");
    script.src = "https://embed.twitch.tv/embed/v1.js";
    script.async = true;
    script.onerror = function () {
      clearTimeout(timer);
      fail();
    };
    script.onload = function () {
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

  // ---- start --------------------------------------------------------------------------------

  var rendered = list.querySelectorAll("li[data-seq]");
  for (var i = 0; i < rendered.length; i += 1) {
    shown.set(Number(rendered[i].getAttribute("data-seq")), rendered[i]);
  }
  (Array.isArray(initial.events) ? initial.events : []).filter(isEvent).forEach(function (event) {
    place(event, false);
    if (watermark === null || event.seq > watermark) watermark = event.seq;
  });
  tick();
  window.setInterval(tick, TICK_MS);
  setConnection("connecting");
  connect();
  // After `load`, so that a slow or unreachable Twitch never holds up the page itself.
  if (document.readyState === "complete") loadEmbed();
  else window.addEventListener("load", loadEmbed);
})();
