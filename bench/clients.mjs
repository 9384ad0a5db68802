// Many Socket.IO viewers in one Node process, on the `ws` package: a minimal Engine.IO v4 /
// Socket.IO v5 client (open, "40" connect with the session cookie, 42["watch"] with an ack id,
// answer pings "2" with "3"), nothing else. socket.io-client would spend its time in its own
// machinery; this keeps the load generator far from being the bottleneck.
//
// Usage: node clients.mjs '<json config>'   config: {url, cookie, n, streamer, concurrency}
// stdout: one JSON line when every client has connected and watched ({ready, refused}), then
// one JSON line per "report FIRST LAST" command read from stdin. stdin commands:
//   reset              start counting afresh (frames, latencies, CPU)
//   report FIRST LAST  frames, per-client lost/duplicated for seqs FIRST..LAST, latency percentiles
//   drop K             close K clients (they keep their last seq) ; rejoin: reconnect them with after
//   close              close everything and exit
import { WebSocket } from "ws";
import { createInterface } from "node:readline";

const config = JSON.parse(process.argv[2]);
const wsUrl = config.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket";
const headers = config.cookie ? { Cookie: `sev_session=${config.cookie}` } : {};

const EVENT_PREFIX = Buffer.from('["event",');
const SEQ_KEY = Buffer.from('"seq":');
const SENT_KEY = Buffer.from('"bench_sent_ms":');

// The number right after `key` in a JSON text (no JSON.parse: the key occurs once per event).
function numberAfter(raw, key) {
  const at = raw.indexOf(key);
  if (at < 0) return 0;
  let end = at + key.length;
  while (end < raw.length && raw[end] !== 44 /* , */ && raw[end] !== 125 /* } */) end++;
  return Number(raw.toString("latin1", at + key.length, end));
}

let latencies = new Float64Array(1 << 20);
let latencyCount = 0;
let frames = 0;
let cpuStart = process.cpuUsage();
let wallStart = performance.now();

function recordLatency(ms) {
  if (latencyCount === latencies.length) {
    const grown = new Float64Array(latencies.length * 2);
    grown.set(latencies);
    latencies = grown;
  }
  latencies[latencyCount++] = ms;
}

class Viewer {
  constructor(index) {
    this.index = index;
    this.seqs = [];
    this.lastSeq = null;
    this.ready = null;
    this.refused = false;
  }

  open(after) {
    return new Promise((resolve) => {
      this.ready = resolve;
      // No UTF-8 validation: the generator would spend more on it than on anything else.
      const ws = new WebSocket(wsUrl, { headers, perMessageDeflate: false, skipUTF8Validation: true });
      this.ws = ws;
      ws.on("message", (raw) => {
        // Events are most of the traffic: read seq and the send time without parsing the JSON.
        if (raw.length > 10 && raw[0] === 52 && raw[1] === 50 && raw.indexOf(EVENT_PREFIX) === 2) {
          this.onEvent(raw);
        } else {
          this.onMessage(raw.toString(), after);
        }
      });
      ws.on("error", () => {});
      ws.on("close", () => {
        if (this.ready) {
          this.refused = true;
          this.ready(false);
          this.ready = null;
        }
      });
    });
  }

  onEvent(raw) {
    const now = Date.now();
    const seq = numberAfter(raw, SEQ_KEY);
    frames++;
    this.seqs.push(seq);
    if (this.lastSeq === null || seq > this.lastSeq) this.lastSeq = seq;
    const sent = numberAfter(raw, SENT_KEY);
    if (sent) recordLatency(now - sent);
  }

  onMessage(text, after) {
    const type = text.charCodeAt(0);
    if (type === 50 /* "2" ping */) {
      this.ws.send("3");
      return;
    }
    if (type === 48 /* "0" open */) {
      this.ws.send("40");
      return;
    }
    if (text.startsWith("42")) {
      const now = Date.now();
      const [name, event] = JSON.parse(text.slice(2));
      if (name !== "event") return;
      frames++;
      this.seqs.push(event.seq);
      if (this.lastSeq === null || event.seq > this.lastSeq) this.lastSeq = event.seq;
      const sent = event.data && event.data.bench_sent_ms;
      if (sent) recordLatency(now - sent);
      return;
    }
    if (text.startsWith("40")) {
      this.ws.send(
        "420" + JSON.stringify(["watch", { streamer: config.streamer, after: after ?? null }]),
      );
      return;
    }
    if (text.startsWith("430")) {
      const ack = JSON.parse(text.slice(3))[0];
      for (const event of ack.events || []) {
        this.seqs.push(event.seq);
        if (this.lastSeq === null || event.seq > this.lastSeq) this.lastSeq = event.seq;
      }
      if (this.ready) {
        this.ready(!ack.error);
        this.ready = null;
      }
      return;
    }
    if (text.startsWith("44")) {
      this.refused = true;
      if (this.ready) {
        this.ready(false);
        this.ready = null;
      }
      this.ws.close();
    }
  }
}

async function openAll(viewers, after) {
  const concurrency = config.concurrency || 100;
  let next = 0;
  let ok = 0;
  async function worker() {
    while (next < viewers.length) {
      const viewer = viewers[next++];
      if (await viewer.open(after ? viewer.lastSeq : null)) ok++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return ok;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

function report(first, last) {
  let lost = 0;
  let duplicated = 0;
  let clientsMissing = 0;
  for (const viewer of viewers) {
    if (viewer.refused) continue;
    const seen = new Set();
    let dups = 0;
    for (const seq of viewer.seqs) {
      if (seq < first || seq > last) continue;
      if (seen.has(seq)) dups++;
      else seen.add(seq);
    }
    const missing = last - first + 1 - seen.size;
    if (missing > 0) clientsMissing++;
    lost += missing;
    duplicated += dups;
  }
  const sorted = latencies.slice(0, latencyCount).sort();
  const cpu = process.cpuUsage(cpuStart);
  const wall = (performance.now() - wallStart) / 1000;
  return {
    frames,
    lost,
    duplicated,
    clients_missing: clientsMissing,
    latency_ms: {
      count: latencyCount,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted.length ? sorted[sorted.length - 1] : null,
    },
    cpu_percent: (100 * (cpu.user + cpu.system)) / 1e6 / wall,
    wall_s: wall,
  };
}

const viewers = Array.from({ length: config.n }, (_, i) => new Viewer(i));
const ready = await openAll(viewers, false);
console.log(JSON.stringify({ ready, refused: config.n - ready }));

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [command, ...args] = line.trim().split(/\s+/);
  if (command === "reset") {
    latencyCount = 0;
    frames = 0;
    cpuStart = process.cpuUsage();
    wallStart = performance.now();
    for (const viewer of viewers) viewer.seqs = [];
    console.log(JSON.stringify({ reset: true }));
  } else if (command === "report") {
    console.log(JSON.stringify(report(Number(args[0]), Number(args[1]))));
  } else if (command === "drop") {
    const dropped = viewers.slice(0, Number(args[0]));
    for (const viewer of dropped) viewer.ws.close();
    console.log(JSON.stringify({ dropped: dropped.length }));
  } else if (command === "rejoin") {
    const dropped = viewers.slice(0, Number(args[0]));
    const ok = await openAll(dropped, true);
    console.log(JSON.stringify({ rejoined: ok }));
  } else if (command === "close") {
    for (const viewer of viewers) viewer.ws.terminate();
    break;
  }
}
process.exit(0);
