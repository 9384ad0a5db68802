// Signed EventSub notifications, as Twitch sends them, over keep-alive HTTP/1.1 connections.
//
// Usage: node ingest.mjs '<json config>'
//   config: {url, secret, concurrency, seconds, rate (0: as fast as answered), broadcaster}
//   or, for several processes and streamers, {urls, broadcasters} instead of url and broadcaster:
//   the i-th notification is for broadcasters[i % B], posted to urls[floor(i / B) % N] (each
//   streamer's notifications go to every process in turn)
// stdout: one JSON line: {sent, statuses, per_s, latency_ms: {p50, p95, p99, max}, cpu_percent}
import http from "node:http";
import { createHmac, randomUUID } from "node:crypto";

const config = JSON.parse(process.argv[2]);
const targets = (config.urls ?? [config.url]).map((url) => new URL(url + "/webhooks/eventsub"));
const broadcasters = config.broadcasters ?? [config.broadcaster];
const agent = new http.Agent({ keepAlive: true, maxSockets: config.concurrency });

function notification(broadcaster) {
  return JSON.stringify({
    subscription: {
      id: "f1c2a387-161a-49f9-a165-0f21d7a4e1c4",
      type: "channel.follow",
      version: "2",
      status: "enabled",
      cost: 0,
      condition: { broadcaster_user_id: broadcaster, moderator_user_id: broadcaster },
      transport: { method: "webhook", callback: "http://127.0.0.1/webhooks/eventsub" },
      created_at: "2026-11-28T10:00:00.000000000Z",
    },
    event: {
      user_id: "1234",
      user_login: "cool_user",
      user_name: "Cool_User",
      broadcaster_user_id: broadcaster,
      broadcaster_user_login: "cooler_user",
      broadcaster_user_name: "Cooler_User",
      followed_at: new Date().toISOString().replace("Z", "123456Z"),
      bench_sent_ms: Date.now(),
    },
  });
}

function twitchTimestamp() {
  return new Date().toISOString().replace("Z", "123456Z");
}

let posted = 0;

function post() {
  const index = posted++;
  const broadcaster = broadcasters[index % broadcasters.length];
  const target = targets[Math.floor(index / broadcasters.length) % targets.length];
  return new Promise((resolve) => {
    const body = notification(broadcaster);
    const id = randomUUID();
    const timestamp = twitchTimestamp();
    const signature =
      "sha256=" + createHmac("sha256", config.secret).update(id + timestamp + body).digest("hex");
    const started = performance.now();
    const request = http.request(
      target,
      {
        method: "POST",
        agent,
        headers: {
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
          "Twitch-Eventsub-Message-Id": id,
          "Twitch-Eventsub-Message-Retry": "0",
          "Twitch-Eventsub-Message-Type": "notification",
          "Twitch-Eventsub-Message-Signature": signature,
          "Twitch-Eventsub-Message-Timestamp": timestamp,
          "Twitch-Eventsub-Subscription-Type": "channel.follow",
          "Twitch-Eventsub-Subscription-Version": "2",
        },
      },
      (response) => {
        response.resume();
        response.on("end", () => resolve([response.statusCode, performance.now() - started]));
      },
    );
    request.on("error", () => resolve([0, performance.now() - started]));
    request.end(body);
  });
}

const statuses = {};
const latencies = [];
let sent = 0;
const cpuStart = process.cpuUsage();
const started = performance.now();
const deadline = started + config.seconds * 1000;

function record([status, ms]) {
  statuses[status] = (statuses[status] || 0) + 1;
  latencies.push(ms);
}

if (!config.rate) {
  // Closed loop: each connection posts again as soon as it is answered.
  async function worker() {
    while (performance.now() < deadline) {
      sent++;
      record(await post());
    }
  }
  await Promise.all(Array.from({ length: config.concurrency }, worker));
} else {
  // Open loop at a fixed rate: latency is measured against the schedule, not a closed loop.
  const pending = [];
  const interval = 1000 / config.rate;
  let next = performance.now();
  while (performance.now() < deadline) {
    const now = performance.now();
    while (next <= now) {
      sent++;
      pending.push(post().then(record));
      next += interval;
    }
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(5, next - performance.now()))));
  }
  await Promise.all(pending);
}

const wall = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pick = (p) =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)] : null;
const cpu = process.cpuUsage(cpuStart);
console.log(
  JSON.stringify({
    sent,
    statuses,
    per_s: (statuses[204] || 0) / wall,
    latency_ms: { p50: pick(0.5), p95: pick(0.95), p99: pick(0.99), max: latencies.at(-1) ?? null },
    cpu_percent: (100 * (cpu.user + cpu.system)) / 1e6 / wall,
  }),
);
agent.destroy();
