// arca's pages work without JavaScript; this adds the copy button and live download progress.
"use strict";
document.documentElement.classList.add("js");

function humanBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u === 0 || n >= 10 ? n.toFixed(0) : n.toFixed(1)) + " " + units[u];
}

function setupCopy() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch (e) {
        window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy));
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
}

// Rows of the downloading page carry data-key; poll the same page of the JSON listing and move
// their bars. The rate is arca's (bytes a second from upstream, over all the download's
// connections); before arca has measured one, the bar's own between two polls.
function setupProgress() {
  const table = document.querySelector("table[data-live]");
  if (!table) return;
  const last = new Map();
  async function poll() {
    let data;
    try {
      const response = await fetch(table.dataset.live, { cache: "no-store" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) { return; }
    const now = performance.now(), seen = new Set();
    for (const r of data.resources) {
      seen.add(r.key);
      const row = table.querySelector('tr[data-key="' + r.key + '"]');
      if (!row) continue;
      const bar = row.querySelector("progress"), text = row.querySelector(".got"), rate = row.querySelector(".rate");
      if (r.content_length) { bar.max = r.content_length; bar.value = r.downloaded; }
      text.textContent = humanBytes(r.downloaded) + (r.content_length ? " of " + humanBytes(r.content_length) : "");
      const before = last.get(r.key);
      if (r.connections > 0) { // arca measures what upstream sends, over all its connections
        rate.textContent = humanBytes(r.rate) + "/s" + (r.connections > 1 ? " over " + r.connections + " connections" : "");
      } else if (before && now > before.t) {
        rate.textContent = humanBytes(Math.max(0, (r.downloaded - before.got) * 1000 / (now - before.t))) + "/s";
      }
      last.set(r.key, { got: r.downloaded, t: now });
    }
    for (const row of table.querySelectorAll("tr[data-key]")) {
      if (!seen.has(row.dataset.key) && !row.classList.contains("finished")) {
        row.classList.add("finished");
        const bar = row.querySelector("progress");
        if (bar && bar.max) bar.value = bar.max;
        row.querySelector(".rate").textContent = "";
        row.querySelector(".got").innerHTML = '<span class="done">finished</span>';
      }
    }
  }
  poll();
  setInterval(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => { setupCopy(); setupProgress(); });
