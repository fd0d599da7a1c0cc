// streamdet live view: frames and state over one WebSocket, prompt edits back over it.
// Per frame the server sends a JSON text ("type": "frame") and then the JPEG as binary; the
// page draws the newest picture, overlays the heatmap when asked, and acknowledges the frame
// after it was painted, so the server never sends more than two frames ahead of the screen.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const $ = (id) => document.getElementById(id);
  const canvas = $("video");
  const ctx = canvas.getContext("2d");
  const heatCanvas = document.createElement("canvas");
  const heatCtx = heatCanvas.getContext("2d");

  // What tests and the latency benchmark read: frames painted, the labels on the newest one,
  // and capture -> painted milliseconds of the last frames.
  const latency = [];
  const view = { frames: 0, seq: 0, labels: [], latency: latency, connected: false };
  window.streamdetView = view;
  window.streamdetLatency = latency;

  let socket = null;
  let meta = null; // the JSON of the frame whose JPEG comes next
  let shown = { prompts: [], thresholds: {}, colors: {} };
  let shownKey = "";
  let dragging = false;
  let awaited = null; // an accepted prompt edit the state does not show yet
  let retry = 500;

  function setStatus(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + (cls || "");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/ws" + query);
    socket.binaryType = "blob";
    socket.onopen = () => {
      retry = 500;
      view.connected = true;
      setStatus("live", "live");
      socket.send(JSON.stringify({ type: "hello", ack: true }));
    };
    socket.onclose = () => {
      view.connected = false;
      setStatus("disconnected", "stopped");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 5000);
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        onText(JSON.parse(event.data));
      } else if (meta !== null) {
        const frame = meta;
        meta = null;
        paint(event.data, frame);
      }
    };
  }

  function onText(msg) {
    if (msg.type === "frame") {
      meta = msg;
    } else if (msg.type === "state") {
      showState(msg);
    } else if (msg.type === "prompts") {
      // accepted: show it now, and ignore states that predate it until it is applied
      $("prompt-error").textContent = "";
      const thresholds = { ...pick(shown.thresholds, msg.prompts), ...msg.thresholds };
      shown = { prompts: msg.prompts, thresholds: thresholds, colors: shown.colors };
      awaited = { prompts: JSON.stringify(msg.prompts), until: Date.now() + 2000 };
      showPrompts();
    } else if (msg.type === "error") {
      $("prompt-error").textContent = msg.error;
    }
  }

  async function paint(blob, frame) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob);
    } catch (err) {
      ack(frame.seq);
      return;
    }
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    if ($("heatmap-toggle").checked) drawHeatmap(frame.heatmap);
    showDetections(frame);
    requestAnimationFrame(() => {
      latency.push(Date.now() - frame.captured_ms);
      if (latency.length > 2000) latency.splice(0, latency.length - 2000);
      view.frames += 1;
      view.seq = frame.seq;
      view.labels = frame.detections.map((d) => d.label);
      ack(frame.seq);
    });
  }

  function ack(seq) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "ack", seq: seq }));
    }
  }

  // A jet-like colour map over the frame, cell by cell, half transparent.
  function drawHeatmap(heat) {
    if (!heat || !heat.rows || !heat.cols) return;
    const cells = atob(heat.cells);
    heatCanvas.width = heat.cols;
    heatCanvas.height = heat.rows;
    const image = heatCtx.createImageData(heat.cols, heat.rows);
    for (let i = 0; i < cells.length; i++) {
      const v = cells.charCodeAt(i) / 255;
      const clamp = (x) => Math.max(0, Math.min(1, x)) * 255;
      image.data[4 * i] = clamp(1.5 - Math.abs(4 * v - 3));
      image.data[4 * i + 1] = clamp(1.5 - Math.abs(4 * v - 2));
      image.data[4 * i + 2] = clamp(1.5 - Math.abs(4 * v - 1));
      image.data[4 * i + 3] = 115;
    }
    heatCtx.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(heatCanvas, 0, 0, heat.cols * heat.patch, heat.rows * heat.patch);
  }

  function showDetections(frame) {
    const list = $("detections");
    const items = frame.detections.map((d) => {
      const li = document.createElement("li");
      const id = d.track_id !== undefined && d.track_id !== null ? " #" + d.track_id : "";
      li.textContent = d.label + id + " " + d.score.toFixed(2);
      li.className = "detection";
      return li;
    });
    list.replaceChildren(...items);
  }

  function fmt(value, digits) {
    return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
  }

  function median(values) {
    if (!values.length) return null;
    const sorted = values.slice(-60).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  function showState(state) {
    $("source").textContent = state.source + (state.running ? "" : " (ended)");
    const rows = [
      ["FPS", fmt(state.fps, 1)],
      ["frames", state.frames_processed],
      ["dropped", state.frames_dropped],
      ["latency (pipeline)", fmt(state.latency_ms, 0) + " ms"],
      ["latency (to screen)", fmt(median(latency), 0) + " ms"],
      ["viewers", state.viewers],
    ];
    for (const [stage, ms] of Object.entries(state.stages_ms || {})) {
      rows.push([stage, fmt(ms, 1) + " ms"]);
    }
    const stats = $("stats");
    stats.replaceChildren();
    for (const [name, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      dd.dataset.stat = name;
      stats.append(dt, dd);
    }
    const stale = awaited && JSON.stringify(state.prompts) !== awaited.prompts;
    if (stale && Date.now() < awaited.until) {
      return; // an accepted edit is not applied yet: this state is older than the page
    }
    awaited = null;
    const key = JSON.stringify([state.prompts, state.thresholds]);
    if (key !== shownKey && !dragging) {
      shownKey = key;
      shown = { prompts: state.prompts, thresholds: state.thresholds, colors: state.colors || {} };
      showPrompts();
    }
  }

  function showPrompts() {
    const list = $("prompts");
    const items = shown.prompts.map((prompt) => {
      const li = document.createElement("li");
      li.dataset.prompt = prompt;
      const name = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = shown.colors[prompt] || "#888";
      name.append(swatch, document.createTextNode(prompt));
      name.className = "prompt-text";
      const slider = document.createElement("input");
      slider.type = "range";
      slider.min = "0";
      slider.max = "1";
      slider.step = "0.01";
      slider.value = String(shown.thresholds[prompt] ?? 0.5);
      slider.setAttribute("aria-label", "threshold of " + prompt);
      const number = document.createElement("output");
      number.textContent = Number(slider.value).toFixed(2);
      slider.addEventListener("pointerdown", () => (dragging = true));
      slider.addEventListener("input", () => (number.textContent = Number(slider.value).toFixed(2)));
      slider.addEventListener("change", () => {
        dragging = false;
        const thresholds = { ...shown.thresholds, [prompt]: Number(slider.value) };
        send(shown.prompts, thresholds);
      });
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.className = "remove";
      remove.setAttribute("aria-label", "remove " + prompt);
      remove.addEventListener("click", () => {
        const rest = shown.prompts.filter((p) => p !== prompt);
        if (!rest.length) {
          $("prompt-error").textContent = "keep at least one prompt";
          return;
        }
        send(rest, pick(shown.thresholds, rest));
      });
      li.append(name, slider, number, remove);
      return li;
    });
    list.replaceChildren(...items);
  }

  function pick(thresholds, prompts) {
    const out = {};
    for (const p of prompts) if (p in thresholds) out[p] = thresholds[p];
    return out;
  }

  function send(prompts, thresholds) {
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      $("prompt-error").textContent = "not connected";
      return;
    }
    socket.send(JSON.stringify({ type: "prompts", prompts: prompts, thresholds: thresholds }));
  }

  // a click on a slider that moved nothing fires no "change": end the drag on any release
  window.addEventListener("pointerup", () => setTimeout(() => (dragging = false), 0));

  $("add-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("new-prompt");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send([...shown.prompts, text], pick(shown.thresholds, shown.prompts));
  });

  connect();
})();
