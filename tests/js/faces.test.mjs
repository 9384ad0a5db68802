// static/faces.js: which picture addresses the streamer page puts in an img's src.
import assert from "node:assert/strict";
import { test } from "node:test";

import { faceSrc } from "../../static/faces.js";

test("pictures on Twitch's image CDN and the demo's own path are used as they are", () => {
  const cdn = "https://static-cdn.jtvnw.net/jtv_user_pictures/abc-profile_image-300x300.png";
  assert.equal(faceSrc(cdn), cdn);
  assert.equal(faceSrc("/_twitch/profile-images/41000001.svg"), "/_twitch/profile-images/41000001.svg");
});

test("any other address is never used", () => {
  for (const hostile of [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:image/svg+xml;base64,PHN2Zz4=",
    "https://evil.example/x.png",
    "https://static-cdn.jtvnw.net.evil.example/x.png",
    "https://static-cdn.jtvnw.net@evil.example/x.png",
    "http://static-cdn.jtvnw.net/x.png",
    "//static-cdn.jtvnw.net/x.png",
    "/_twitch/profile-images/../../logout",
    "/_twitch/profile-images/%2e%2e/control/subscriptions",
    "/_twitch/profile-images/%2E%2e/%2e%2E/logout",
    "/_twitch/profile-images/.%2e/control/accounts",
    "/_twitch/profile-images/%2e/../x.svg",
    "https://static-cdn.jtvnw.net/%2e%2e/x.png",
    "/static/x.png",
    'https://static-cdn.jtvnw.net/x.png" onerror="alert(1)',
    "https://static-cdn.jtvnw.net/x .png",
    "",
    null,
    undefined,
    42,
    { toString: () => "https://static-cdn.jtvnw.net/x.png" },
  ]) {
    assert.equal(faceSrc(hostile), null, String(hostile));
  }
});
