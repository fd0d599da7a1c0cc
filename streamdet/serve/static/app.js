// streamdet live view: one tile per source, each with its own WebSocket (/ws?source=K) that
// brings that source's frames and state; prompt edits go back over a socket (the prompts are
// shared by every source: one model). Per frame the server sends a JSON text ("type": "frame")
// and then the JPEG as binary; a tile draws the newest picture, overlays the heatmap when asked,
// and acknowledges the frame after it was painted, so the server never sends more than two
// frames ahead of the screen. A run of one source shows one large tile, as before; several show
// a grid: a click on a tile selects it (stats and detections on the right) and enlarges it.
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const $ = (id) => document.getElementById(id);
  const grid = $("tiles");
  const heatCanvas = document.createElement("canvas");
  const heatCtx = heatCanvas.getContext("2d");

  // What tests and the latency benchmark read: frames painted, the labels on the newest one
  // and capture -> painted milliseconds (the first source's at the top, every source's in
  // tiles; latency has the frames of every source).
  const latency = [];
  const view = { frames: 0, seq: 0, labels: [], latency: latency, connected: false, tiles: [] };
  window.streamdetView = view;
  window.streamdetLatency = latency;

  const tiles = [];
  let selected = 0;
  let enlarged = null; // the index of the enlarged tile of a grid, or null
  let shown = { prompts: [], thresholds: {}, colors: {} };
  let shownKey = "";
  let dragging = false;
  let awaited = null; // an accepted prompt edit the state does not show yet

  function withSource(path, index) {
    if (index === 0) return path + query; // the first source's URLs are as they always were
    return path + (query ? query + "&" : "?") + "source=" + index;
  }

  function setStatus(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + (cls || "");
  }

  // ------------------------------------------------------------------ tiles

  function makeTile(index) {
    let figure = grid.querySelector(".tile[data-source='" + index + "']");
    if (!figure) {
      figure = document.createElement("figure");
      figure.className = "tile";
      figure.dataset.source = String(index);
      const canvas = document.createElement("canvas");
      canvas.width = 640;
      canvas.height = 360;
      canvas.setAttribute("aria-label", "annotated video of source " + index);
      const caption = document.createElement("figcaption");
      figure.append(canvas, caption);
      grid.append(figure);
    }
    figure.tabIndex = 0;
    const canvas = figure.querySelector("canvas");
    const stats = { frames: 0, seq: 0, labels: [], connected: false };
    const tile = {
      index: index,
      figure: figure,
      canvas: canvas,
      ctx: canvas.getContext("2d"),
      caption: figure.querySelector("figcaption"),
      stats: stats,
      socket: null,
      meta: null, // the JSON of the frame whose JPEG comes next
      retry: 500,
      gone: false,
      name: "",
      lastFrame: null,
    };
    figure.addEventListener("click", () => choose(index));
    figure.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose(index);
      }
    });
    view.tiles[index] = stats;
    connect(tile);
    return tile;
  }

  function dropTile(tile) {
    tile.gone = true;
    if (tile.socket) tile.socket.close();
    if (tile.index === 0) return; // the first tile is part of the page
    tile.figure.remove();
  }

  // The sources the server lists: a tile each (the first one is always there).
  function ensureTiles(count) {
    count = Math.max(1, count);
    while (tiles.length < count) tiles.push(makeTile(tiles.length));
    while (tiles.length > count) dropTile(tiles.pop());
    view.tiles.length = tiles.length;
    if (selected >= count) selected = 0;
    if (enlarged !== null && enlarged >= count) enlarged = null;
    layout();
  }

  function choose(index) {
    if (tiles.length > 1) enlarged = enlarged === index ? null : index;
    selected = index;
    layout();
    const tile = tiles[index];
    if (tile.lastFrame) showDetections(tile.lastFrame);
    $("source").textContent = tile.name;
  }

  function layout() {
    grid.classList.toggle("single", tiles.length === 1);
    grid.classList.toggle("has-big", enlarged !== null);
    for (const tile of tiles) {
      tile.figure.classList.toggle("big", tile.index === enlarged);
      tile.figure.classList.toggle("selected", tiles.length > 1 && tile.index === selected);
    }
    $("mjpeg-link").setAttribute("href", withSource("/stream.mjpg", selected));
  }

  // ------------------------------------------------------------------ sockets

  function connect(tile) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + withSource("/ws", tile.index));
    tile.socket = socket;
    socket.binaryType = "blob";
    socket.onopen = () => {
      tile.retry = 500;
      tile.stats.connected = true;
      if (tile.index === 0) {
        view.connected = true;
        setStatus("live", "live");
      }
      socket.send(JSON.stringify({ type: "hello", ack: true }));
    };
    socket.onclose = () => {
      tile.stats.connected = false;
      if (tile.index === 0) {
        view.connected = false;
        setStatus("disconnected", "stopped");
      }
      if (tile.gone) return;
      setTimeout(() => connect(tile), tile.retry);
      tile.retry = Math.min(tile.retry * 2, 5000);
    };
    socket.onmessage = (event) => {
      if (typeof event.data === "string") {
        onText(tile, JSON.parse(event.data));
      } else if (tile.meta !== null) {
        const frame = tile.meta;
        tile.meta = null;
        paint(tile, event.data, frame);
      }
    };
  }

  function onText(tile, msg) {
    if (msg.type === "frame") {
      tile.meta = msg;
    } else if (msg.type === "state") {
      showState(tile, msg);
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

  async function paint(tile, blob, frame) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob);
    } catch (err) {
      ack(tile, frame.seq);
      return;
    }
    const canvas = tile.canvas;
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    tile.ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    if ($("heatmap-toggle").checked) drawHeatmap(tile.ctx, frame.heatmap);
    tile.lastFrame = frame;
    if (tile.index === selected) showDetections(frame);
    requestAnimationFrame(() => {
      latency.push(Date.now() - frame.captured_ms);
      if (latency.length > 2000) latency.splice(0, latency.length - 2000);
      const stats = tile.stats;
      stats.frames += 1;
      stats.seq = frame.seq;
      stats.labels = frame.detections.map((d) => d.label);
      if (tile.index === 0) {
        view.frames = stats.frames;
        view.seq = stats.seq;
        view.labels = stats.labels;
      }
      ack(tile, frame.seq);
    });
  }

  function ack(tile, seq) {
    const socket = tile.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "ack", seq: seq }));
    }
  }

  // A jet-like colour map over the frame, cell by cell, half transparent.
  function drawHeatmap(ctx, heat) {
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

  // ------------------------------------------------------------------ state

  function fmt(value, digits) {
    return value === null || value === undefined ? "-" : Number(value).toFixed(digits);
  }

  function median(values) {
    if (!values.length) return null;
    const sorted = values.slice(-60).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  function showState(tile, state) {
    if (tile.index === 0 && Array.isArray(state.sources)) ensureTiles(state.sources.length);
    if (tile.gone) return;
    tile.name = state.source + (state.running ? "" : " (ended)");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = tile.name;
    const fps = document.createElement("span");
    fps.className = "fps";
    fps.textContent = fmt(state.fps, 1) + " FPS";
    tile.caption.replaceChildren(name, fps);
    if (tile.index !== selected) return;
    $("source").textContent = tile.name;
    const rows = [
      ["FPS", fmt(state.fps, 1)],
      ["frames", state.frames_processed],
      ["dropped", state.frames_dropped],
      ["latency (pipeline)", fmt(state.latency_ms, 0) + " ms"],
      ["latency (to screen)", fmt(median(latency), 0) + " ms"],
      ["viewers", state.viewers],
    ];
    if (tiles.length > 1) rows.unshift(["sources", tiles.length]);
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

  // ------------------------------------------------------------------ prompts (shared)

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

  // Any open socket will do: the prompts are the same for every source.
  function send(prompts, thresholds) {
    const order = [tiles[selected], ...tiles].filter(Boolean);
    const open = order.find((t) => t.socket && t.socket.readyState === WebSocket.OPEN);
    if (!open) {
      $("prompt-error").textContent = "not connected";
      return;
    }
    const message = { type: "prompts", prompts: prompts, thresholds: thresholds };
    open.socket.send(JSON.stringify(message));
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

  ensureTiles(1);
})();
