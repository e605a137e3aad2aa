// Mathia chat client: one WebSocket per tab, every room multiplexed over it.
// The server is the truth: after a reconnect each room catches up from its last version.
// Server HTML (message.html) is sanitized on the server; everything else goes in as text.
"use strict";

(() => {
  const boot = JSON.parse(document.getElementById("chat-bootstrap").textContent);
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };

  const TYPING_SEND_EVERY_MS = 2500;
  const PING_EVERY_MS = 25000;
  const HISTORY_PAGE = 50;

  const state = {
    me: boot.user,
    workspace: boot.workspace,
    rooms: new Map(), // id -> room state
    people: new Map(boot.people.map((p) => [p.id, p])),
    current: null,
    replyTo: null,
    pending: new Map(), // client_id -> send frame, resent after a reconnect (idempotent)
    refs: new Map(), // ref -> {resolve, reject}
    streams: new Map(), // message id -> {text, shown, chunk}: answers being written by @mathia
    nextRef: 1,
  };

  function roomState(summary) {
    let room = state.rooms.get(summary.id);
    if (!room) {
      room = {
        id: summary.id, messages: new Map(), order: [], version: summary.version || 0,
        hasMore: true, loadedOnce: false, loading: false, unread: 0, mentions: 0,
        lastReadSeq: 0, typing: new Map(), member: true,
      };
      state.rooms.set(summary.id, room);
    }
    Object.assign(room, {
      kind: summary.kind, name: summary.name, topic: summary.topic, archived: summary.archived,
    });
    if (summary.unread !== undefined) room.unread = summary.unread;
    if (summary.mentions !== undefined) room.mentions = summary.mentions;
    if (summary.last_read_seq !== undefined) room.lastReadSeq = summary.last_read_seq;
    if (summary.member !== undefined) room.member = summary.member;
    if (summary.role !== undefined) room.canModerate = summary.role === "owner" || summary.role === "moderator";
    return room;
  }

  // --- Socket --------------------------------------------------------------------------
  let socket = null;
  let retryDelay = 500;
  let pingTimer = null;
  let everConnected = false;

  function banner(text) {
    const node = $("connection-banner");
    node.hidden = !text;
    node.textContent = text || "";
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/`);
    socket.addEventListener("open", onOpen);
    socket.addEventListener("message", (event) => onFrame(JSON.parse(event.data)));
    socket.addEventListener("close", onClose);
  }

  function onOpen() {
    retryDelay = 500;
    banner(null);
    const ids = [...state.rooms.keys()];
    if (ids.length) send({ type: "subscribe", rooms: ids });
    if (everConnected) {
      // Catch up every room we had loaded, from the last version we saw.
      const versions = {};
      for (const room of state.rooms.values()) if (room.loadedOnce) versions[room.id] = room.version;
      if (Object.keys(versions).length) send({ type: "sync", rooms: versions });
      for (const frame of state.pending.values()) send(frame);
    }
    while (outbox.length) send(outbox.shift());
    everConnected = true;
    clearInterval(pingTimer);
    pingTimer = setInterval(() => send({ type: "ping" }), PING_EVERY_MS);
  }

  function onClose(event) {
    clearInterval(pingTimer);
    if (event.code === 4401) { location.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname); return; }
    banner(navigator.onLine ? "Connection lost. Reconnecting…" : "You are offline. Messages will be sent when you are back.");
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  }

  const outbox = []; // requests made while connecting; sent right after the subscriptions

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function request(frame) {
    const ref = `q${state.nextRef++}`;
    frame.ref = ref;
    return new Promise((resolve, reject) => {
      state.refs.set(ref, { resolve, reject });
      if (!send(frame)) outbox.push(frame);
    });
  }

  window.addEventListener("online", () => { if (socket && socket.readyState === WebSocket.CLOSED) connect(); });

  // --- Inbound frames -----------------------------------------------------------------
  function onFrame(frame) {
    const waiter = frame.ref && state.refs.get(frame.ref);
    if (waiter) {
      state.refs.delete(frame.ref);
      if (frame.type === "error") waiter.reject(frame); else waiter.resolve(frame);
    }
    switch (frame.type) {
      case "message.new": case "message.updated": case "message.deleted":
        upsert(frame.message, frame.version); break;
      case "ack":
        if (frame.client_id) { state.pending.delete(frame.client_id); }
        if (frame.message) {
          upsert(frame.message, null);
          // The broadcast may have come first and drawn it as pending: draw it as sent.
          if (frame.client_id && state.current === frame.message.room_id) renderMessages({ keepBottom: true });
        }
        break;
      case "message.stream": onStream(frame); break;
      case "assistant.status": onToolStatus(frame); break;
      case "sync": applySync(frame); break;
      case "typing": onTyping(frame); break;
      case "presence": onPresence(frame); break;
      case "read": { const room = state.rooms.get(frame.room_id); if (room) { room.lastReadSeq = Math.max(room.lastReadSeq, frame.seq); recount(room); renderSidebar(); } break; }
      case "subscribed": for (const s of frame.rooms) roomState(s); applyTypingSnapshot(frame.typing || {}); renderSidebar(); break;
      case "room.updated": roomState(frame.room); renderSidebar(); if (state.current === frame.room.id) renderHeader(); break;
      case "room.joined": refreshRooms(); break;
      case "room.left": state.rooms.delete(frame.room_id); if (state.current === frame.room_id) openRoom(null); renderSidebar(); break;
      case "room.member_joined": case "room.member_left": if (state.current === frame.room_id && !$("context").hidden) renderContext(); break;
      case "error": if (!waiter) showError(frame.message); break;
    }
    for (const hook of hooks.frame) hook(frame);
  }

  function upsert(message, version) {
    const room = state.rooms.get(message.room_id);
    if (!room) return;
    const known = room.messages.get(message.id);
    if (trackStream(message, known) && state.current === room.id) drawStream(message.id);
    if (known && known.version >= message.version) return; // stale or duplicate
    room.messages.set(message.id, message);
    if (!known) {
      room.order.push(message.id);
      room.order.sort((a, b) => room.messages.get(a).seq - room.messages.get(b).seq);
      if (message.author && message.author.id !== state.me.id && message.seq > room.lastReadSeq && !message.deleted) {
        room.unread += 1;
        if (message.mentions.includes(state.me.id)) room.mentions += 1;
      }
      if (message.author) room.typing.delete(message.author.id);
    }
    if (version !== null && version !== undefined) room.version = Math.max(room.version, version);
    room.version = Math.max(room.version, message.version);
    if (state.current === room.id) { renderMessages({ keepBottom: true }); renderTyping(); markRead(); }
    renderSidebar();
  }

  // --- Streamed answers ------------------------------------------------------------------
  // The server sends text in numbered chunks; a message loaded mid-answer carries the text so
  // far and its chunk number, so later chunks apply once each. A gap asks for the message again.
  // Returns true when the payload brought newer streamed text than the client had.
  function trackStream(message, known) {
    if (known && known.version > message.version) return false; // an older payload: it must not revive a stream
    if (message.status !== "streaming" || message.deleted) { state.streams.delete(message.id); return false; }
    const entry = state.streams.get(message.id);
    const snapshot = message.stream || { text: "", chunk: 0 };
    if (!entry) {
      state.streams.set(message.id, { text: snapshot.text, shown: snapshot.text.length, chunk: snapshot.chunk, resyncing: false });
      return Boolean(known);
    }
    entry.resyncing = false;
    if (snapshot.chunk <= entry.chunk) return false;
    entry.text = snapshot.text; entry.chunk = snapshot.chunk; entry.shown = Math.min(entry.shown, entry.text.length);
    return true;
  }

  function onStream(frame) {
    const room = state.rooms.get(frame.room_id);
    const message = room && room.messages.get(frame.message_id);
    const entry = state.streams.get(frame.message_id);
    if (!message || !entry) return; // not loaded: history or sync will bring the text so far
    if (frame.chunk <= entry.chunk) return; // already in the snapshot
    if (frame.chunk > entry.chunk + 1) { // missed a chunk: fetch the message with its snapshot, once
      if (!entry.resyncing) { entry.resyncing = true; send({ type: "sync", rooms: { [room.id]: Math.max(0, message.version - 1) } }); }
      return;
    }
    entry.text += frame.delta;
    entry.chunk = frame.chunk;
    if (state.current === room.id) animateStreams();
  }

  // A tool @mathia is running for an answer: a live line under it ("Checking the weather in Nairobi…").
  function onToolStatus(frame) {
    const entry = state.streams.get(frame.message_id);
    if (!entry) return;
    entry.status = { text: frame.text, state: frame.state }; // kept, marked done, until the answer ends
    const room = state.rooms.get(frame.room_id);
    if (room && state.current === room.id) drawStream(frame.message_id);
  }

  let animating = false;
  function animateStreams() {
    if (animating) return;
    animating = true;
    const step = () => {
      let more = false;
      for (const [id, entry] of state.streams) {
        if (entry.shown >= entry.text.length) continue;
        // Reveal a share of the backlog each frame: smooth at any token rate, never far behind.
        const backlog = entry.text.length - entry.shown;
        entry.shown += Math.max(1, Math.ceil(backlog / 8));
        drawStream(id);
        if (entry.shown < entry.text.length) more = true;
      }
      if (more) requestAnimationFrame(step); else animating = false;
    };
    requestAnimationFrame(step);
  }

  function drawStream(id) {
    const node = document.querySelector(`#messages [data-message-id="${id}"] .body`);
    const entry = state.streams.get(id);
    if (!node || !entry) return;
    const stick = atBottom();
    fillStreamBody(node, entry);
    if (stick) $("messages").scrollTop = $("messages").scrollHeight;
  }

  function fillStreamBody(body, entry) {
    const status = entry.status
      ? el("span", { class: `tool-status ${entry.status.state === "running" ? "running" : entry.status.state === "ok" ? "done" : "failed"}`, role: "status", text: entry.status.text })
      : null;
    if (!entry.text) { body.replaceChildren(status || el("span", { class: "thinking", text: "Mathia is thinking" })); return; }
    body.replaceChildren(document.createTextNode(entry.text.slice(0, entry.shown)), el("span", { class: "caret", "aria-hidden": "true" }));
    if (status) body.append(status);
  }

  // GIFs Mathia posts are links to GIPHY's media hosts: show them inline (nothing else is embedded).
  const GIF_URL = /^https:\/\/media[0-9]?\.giphy\.com\/media\/[A-Za-z0-9]+\/[A-Za-z0-9_-]+\.gif(\?[A-Za-z0-9=&._-]*)?$/;
  function embedGifs(body) {
    for (const link of body.querySelectorAll("a[href]")) {
      if (!GIF_URL.test(link.href)) continue;
      link.after(el("img", { class: "gif", src: link.href, alt: link.textContent, loading: "lazy", referrerpolicy: "no-referrer" }));
    }
  }

  function applySync(frame) {
    const room = state.rooms.get(frame.room_id);
    if (!room) return;
    if (!frame.complete) { // too much changed while away: start the room afresh
      room.messages.clear(); room.order = []; room.hasMore = true; room.loadedOnce = false; room.version = frame.version;
      if (state.current === room.id) loadHistory(room);
      return;
    }
    for (const message of frame.messages) upsert(message, null);
    room.version = Math.max(room.version, frame.version);
  }

  function recount(room) {
    // Only when every unread message is loaded; otherwise the server's counts stand.
    const oldest = room.order.length ? room.messages.get(room.order[0]).seq : Infinity;
    if (room.hasMore && oldest > room.lastReadSeq + 1) {
      if (room.lastReadSeq >= room.version) { room.unread = 0; room.mentions = 0; }
      return;
    }
    let unread = 0, mentions = 0;
    for (const m of room.messages.values()) {
      if (m.seq > room.lastReadSeq && m.author && m.author.id !== state.me.id && !m.deleted) {
        unread++; if (m.mentions.includes(state.me.id)) mentions++;
      }
    }
    if (room.loadedOnce) { room.unread = unread; room.mentions = mentions; }
  }

  // --- Typing and presence ------------------------------------------------------------
  function onTyping(frame) {
    const room = state.rooms.get(frame.room_id);
    if (!room || frame.user.id === state.me.id) return;
    room.typing.set(frame.user.id, { name: frame.user.name, until: Date.now() + frame.expires_in * 1000 });
    if (state.current === room.id) renderTyping();
  }

  function applyTypingSnapshot(snapshot) {
    for (const [roomId, users] of Object.entries(snapshot)) {
      const room = state.rooms.get(Number(roomId));
      if (!room) continue;
      for (const uid of users) if (uid !== state.me.id) {
        room.typing.set(uid, { name: (state.people.get(uid) || {}).name || "Someone", until: Date.now() + 6000 });
      }
    }
    renderTyping();
  }

  function renderTyping() {
    const line = $("typing-line");
    const room = state.rooms.get(state.current);
    if (!room) { line.textContent = ""; return; }
    const now = Date.now();
    const names = [...room.typing.entries()].filter(([, t]) => t.until > now).map(([, t]) => t.name);
    for (const [uid, t] of room.typing) if (t.until <= now) room.typing.delete(uid);
    line.textContent = names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, 3).join(", ")} are typing…`;
  }
  setInterval(renderTyping, 1000);

  function onPresence(frame) {
    for (const [userId, status] of Object.entries(frame.users)) {
      const person = state.people.get(Number(userId));
      if (person) person.status = status;
    }
    renderSidebar();
    if (!$("context").hidden) renderContext();
  }

  document.addEventListener("visibilitychange", () => send({ type: "presence", status: document.hidden ? "away" : "online" }));

  // --- Sidebar ------------------------------------------------------------------------
  function dmPeer(room) {
    // For a 1:1 direct room, the other person (by name), for the presence dot.
    for (const person of state.people.values()) if (person.id !== state.me.id && person.name === room.name) return person;
    return null;
  }

  function renderSidebar() {
    const rooms = [...state.rooms.values()].filter((r) => r.member !== false || r.id === state.current);
    rooms.sort((a, b) => (a.archived - b.archived) || a.name.localeCompare(b.name));
    for (const [listId, direct] of [["room-list", false], ["direct-list", true]]) {
      const list = $(listId);
      list.replaceChildren(...rooms.filter((r) => (r.kind === "direct") === direct).map((room) => {
        const peer = direct ? dmPeer(room) : null;
        const badge = room.mentions ? el("span", { class: "badge mention", title: "Mentions", text: String(room.mentions) })
          : room.unread ? el("span", { class: "badge", title: "Unread", text: String(room.unread) }) : null;
        return el("li", { class: room.id === state.current ? "current" : "" },
          el("a", { href: `#room-${room.id}`, "data-room-id": room.id, class: room.unread ? "unread" : "",
                    onclick: (e) => { e.preventDefault(); openRoom(room.id); } },
            direct ? el("span", { class: `dot ${peer ? peer.status : "offline"}`, title: peer ? peer.status : "" })
                   : el("span", { class: "hash", text: room.kind === "private" ? "🔒" : "#" }),
            el("span", { class: "room-name", text: room.name }),
            room.archived ? el("span", { class: "muted", text: " (archived)" }) : null,
            badge));
      }));
    }
    const total = [...state.rooms.values()].reduce((n, r) => n + r.unread, 0);
    document.title = `${total ? `(${total}) ` : ""}${state.workspace.name} · Mathia`;
  }

  async function refreshRooms() {
    const data = await api("GET", `/api/w/${state.workspace.slug}/rooms`);
    const fresh = [];
    for (const summary of data.rooms) { if (!state.rooms.has(summary.id)) fresh.push(summary.id); roomState(summary); }
    if (fresh.length) send({ type: "subscribe", rooms: fresh });
    renderSidebar();
  }

  // --- Room pane ----------------------------------------------------------------------
  function openRoom(roomId) {
    state.current = roomId;
    state.replyTo = null;
    $("reply-preview").hidden = true;
    document.body.classList.remove("show-sidebar");
    if (roomId === null) {
      $("room-title").textContent = "Pick a room"; $("room-topic").textContent = "";
      $("composer").hidden = true; $("join-bar").hidden = true;
      $("messages").replaceChildren($("empty-state") || el("div"));
      return;
    }
    if (location.hash !== `#room-${roomId}`) history.replaceState(null, "", `#room-${roomId}`);
    const room = state.rooms.get(roomId);
    renderHeader();
    renderSidebar();
    renderMessages({ toBottom: true });
    renderTyping();
    if (!room.loadedOnce) loadHistory(room);
    else markRead();
    if (!$("context").hidden) renderContext();
    $("composer-input").focus();
  }

  function renderHeader() {
    const room = state.rooms.get(state.current);
    if (!room) return;
    $("room-title").textContent = (room.kind === "direct" ? "" : room.kind === "private" ? "🔒 " : "# ") + room.name;
    $("room-topic").textContent = room.topic || "";
    const member = room.member !== false;
    $("composer").hidden = !member || room.archived;
    $("join-bar").hidden = member;
  }

  async function loadHistory(room) {
    if (room.loading || (!room.hasMore && room.loadedOnce)) return;
    room.loading = true;
    const oldest = room.order.length ? room.messages.get(room.order[0]).seq : null;
    try {
      const page = await request({ type: "history", room_id: room.id, before_seq: oldest, limit: HISTORY_PAGE });
      const pane = $("messages");
      const fromBottom = pane.scrollHeight - pane.scrollTop;
      for (const message of page.messages) {
        trackStream(message, room.messages.get(message.id)); // an answer being written: its text so far
        if (!room.messages.has(message.id)) { room.messages.set(message.id, message); room.order.push(message.id); }
        room.version = Math.max(room.version, message.version);
      }
      room.order.sort((a, b) => room.messages.get(a).seq - room.messages.get(b).seq);
      room.hasMore = page.has_more;
      const first = !room.loadedOnce;
      room.loadedOnce = true;
      recount(room);
      if (state.current === room.id) {
        renderMessages({});
        pane.scrollTop = first ? pane.scrollHeight : pane.scrollHeight - fromBottom;
        markRead();
      }
      renderSidebar();
    } catch (error) {
      showError(error.message || "Could not load messages.");
    } finally {
      room.loading = false;
    }
  }

  $("messages").addEventListener("scroll", () => {
    const room = state.rooms.get(state.current);
    if (room && $("messages").scrollTop < 80 && room.hasMore) loadHistory(room);
    if (atBottom()) markRead();
  });

  function atBottom() {
    const pane = $("messages");
    return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 40;
  }

  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
  const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function renderMessages({ keepBottom = false, toBottom = false }) {
    const pane = $("messages");
    const room = state.rooms.get(state.current);
    if (!room) return;
    const stick = toBottom || (keepBottom && atBottom());
    const nodes = [];
    if (room.loadedOnce && !room.hasMore) nodes.push(el("div", { class: "room-start muted", text: `This is the start of ${room.name}.` }));
    let lastDay = null;
    for (const id of room.order) {
      const message = room.messages.get(id);
      const created = new Date(message.created_at);
      const day = dayFormat.format(created);
      if (day !== lastDay) { nodes.push(el("div", { class: "day", role: "separator", text: day })); lastDay = day; }
      nodes.push(renderMessage(room, message, created));
    }
    pane.replaceChildren(...nodes);
    if (stick) pane.scrollTop = pane.scrollHeight;
  }

  function renderMessage(room, message, created) {
    const node = $("message-template").content.firstElementChild.cloneNode(true);
    node.dataset.messageId = message.id;
    node.dataset.seq = message.seq;
    if (message.mentions.includes(state.me.id)) node.classList.add("mentions-me");
    if (message.client_id && state.pending.has(message.client_id)) node.classList.add("pending");
    node.querySelector(".author").textContent = message.author ? message.author.name : "Someone";
    const time = node.querySelector("time");
    time.textContent = timeFormat.format(created);
    time.dateTime = message.created_at;
    time.title = created.toLocaleString();
    node.querySelector(".edited").hidden = !message.edited_at || message.deleted;
    if (message.reply_to) {
      const quote = node.querySelector(".quote");
      quote.hidden = false;
      quote.textContent = message.reply_to.deleted ? "A deleted message" : `${message.reply_to.author || "Someone"}: ${message.reply_to.excerpt}`;
    }
    const body = node.querySelector(".body");
    if (message.author && message.author.assistant) node.classList.add("assistant");
    const stream = state.streams.get(message.id);
    if (message.deleted) { node.classList.add("deleted"); body.textContent = "This message was deleted."; }
    else if (message.status === "streaming" && stream) {
      node.classList.add("streaming");
      body.setAttribute("aria-busy", "true");
      fillStreamBody(body, stream);
      const asker = message.reply_to && message.reply_to.author_id === state.me.id;
      const stop = node.querySelector(".stop");
      stop.hidden = !(asker || room.canModerate);
      stop.addEventListener("click", () => { stop.disabled = true; request({ type: "stop", message_id: message.id }).catch((e) => { stop.disabled = false; showError(e.message); }); });
    } else {
      body.innerHTML = message.html; // sanitized on the server (nh3)
      if (message.author && message.author.assistant) embedGifs(body);
    }
    if (message.status === "stopped" || message.status === "failed") {
      node.classList.add(message.status);
      const badge = node.querySelector(".status-badge");
      badge.hidden = false;
      badge.textContent = message.status === "stopped" ? "(stopped)" : "(not completed)";
    }
    const reactions = node.querySelector(".reactions");
    for (const r of message.reactions) {
      const mine = r.user_ids.includes(state.me.id);
      reactions.append(el("button", { type: "button", class: `reaction${mine ? " mine" : ""}`, title: r.user_ids.map((u) => (state.people.get(u) || {}).name || "Someone").join(", "),
        onclick: () => request({ type: "react", message_id: message.id, emoji: r.emoji, present: !mine }).catch((e) => showError(e.message)) },
        `${r.emoji} ${r.count}`));
    }
    const mine = message.author && message.author.id === state.me.id;
    const member = room.member !== false && !room.archived;
    node.querySelector('[data-action="edit"]').hidden = !mine || message.deleted;
    node.querySelector('[data-action="delete"]').hidden = message.deleted || !(mine || room.canModerate);
    node.querySelector(".actions").hidden = !member || message.deleted || message.status === "streaming";
    node.querySelector(".actions").addEventListener("click", (event) => {
      const action = event.target.closest("button")?.dataset.action;
      if (action) onMessageAction(action, message);
    });
    for (const hook of hooks.message) hook(node, message);
    return node;
  }

  async function onMessageAction(action, message) {
    if (action === "reply") {
      state.replyTo = message;
      const preview = $("reply-preview");
      preview.hidden = false;
      preview.querySelector("span").textContent = `Replying to ${message.author ? message.author.name : "someone"}: ${message.body.slice(0, 80)}`;
      $("composer-input").focus();
    } else if (action === "react") {
      const emoji = await choose("React with", ["👍", "🎉", "❤️", "😂", "👀", "✅"]);
      if (emoji) request({ type: "react", message_id: message.id, emoji, present: true }).catch((e) => showError(e.message));
    } else if (action === "edit") {
      const body = await prompt_("Edit message", message.body, true);
      if (body !== null && body.trim() && body !== message.body) request({ type: "edit", message_id: message.id, body }).catch((e) => showError(e.message));
    } else if (action === "delete") {
      if (await confirm_("Delete this message? Everyone will see that a message was deleted.")) {
        request({ type: "delete", message_id: message.id }).catch((e) => showError(e.message));
      }
    }
  }

  let readTimer = null;
  function markRead() {
    const room = state.rooms.get(state.current);
    if (!room || room.member === false || document.hidden || !atBottom() || !room.order.length) return;
    const newest = room.messages.get(room.order[room.order.length - 1]).seq;
    if (newest <= room.lastReadSeq) return;
    room.lastReadSeq = newest;
    room.unread = 0; room.mentions = 0;
    renderSidebar();
    clearTimeout(readTimer);
    readTimer = setTimeout(() => send({ type: "read", room_id: room.id, seq: newest }), 300);
  }
  window.addEventListener("focus", markRead);

  // --- Composer -----------------------------------------------------------------------
  const input = $("composer-input");
  let lastTypingSent = 0;

  // Slash commands: typing "/" at the start lists the registered commands; arrows pick, Tab or
  // Enter completes; once the command is typed, the hint line shows how to use it.
  const commands = boot.commands || [];
  const menu = $("command-menu");
  const hint = $("composer-hint");
  const defaultHint = hint.textContent;
  let menuItems = [], menuIndex = 0;

  function updateCommands() {
    const value = input.value;
    const typing = /^\/([a-z0-9_-]*)$/i.exec(value);
    menuItems = typing ? commands.filter((c) => c.name.startsWith(typing[1].toLowerCase())) : [];
    menuIndex = Math.min(menuIndex, Math.max(0, menuItems.length - 1));
    menu.hidden = menuItems.length === 0;
    menu.replaceChildren(...menuItems.map((c, i) => el("li", {
      role: "option", "aria-selected": i === menuIndex ? "true" : "false", "data-name": c.name,
      onmousedown: (event) => { event.preventDefault(); pickCommand(i); },
    }, el("span", { class: "usage", text: c.usage }), el("span", { class: "description", text: c.description }))));
    const typed = /^\/([a-z0-9_-]+)\s/i.exec(value);
    const command = typed && commands.find((c) => c.name === typed[1].toLowerCase());
    hint.textContent = command ? `${command.usage} · ${command.description}${command.examples.length ? ` · e.g. ${command.examples[0]}` : ""}` : defaultHint;
  }

  function pickCommand(index) {
    const command = menuItems[index];
    if (!command) return;
    input.value = `/${command.name} `;
    menuIndex = 0;
    updateCommands();
    input.focus();
  }

  input.addEventListener("keydown", (event) => {
    if (!menu.hidden) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        menuIndex = (menuIndex + (event.key === "ArrowDown" ? 1 : menuItems.length - 1)) % menuItems.length;
        updateCommands();
        return;
      }
      if (event.key === "Tab" || (event.key === "Enter" && !event.shiftKey && !event.isComposing)) {
        const exact = menuItems[menuIndex] && input.value === `/${menuItems[menuIndex].name}`;
        if (event.key === "Tab" || !exact || menuItems[menuIndex].usage.includes("<")) {
          event.preventDefault(); pickCommand(menuIndex); return;
        }
      }
      if (event.key === "Escape") { event.preventDefault(); menu.hidden = true; menuItems = []; return; }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
  });
  input.addEventListener("blur", () => { menu.hidden = true; });
  input.addEventListener("focus", updateCommands);
  input.addEventListener("input", () => {
    updateCommands();
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 200) + "px";
    const now = Date.now();
    if (input.value.trim() && now - lastTypingSent > TYPING_SEND_EVERY_MS && state.current) {
      lastTypingSent = now;
      send({ type: "typing", room_id: state.current });
    }
  });
  $("composer").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
  $("cancel-reply").addEventListener("click", () => { state.replyTo = null; $("reply-preview").hidden = true; });

  function newClientId() {
    return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`);
  }

  function submit() {
    const body = input.value.trim();
    if (!body || !state.current) return;
    const frame = { type: "send", room_id: state.current, client_id: newClientId(), body, reply_to: state.replyTo ? state.replyTo.id : null };
    state.pending.set(frame.client_id, frame);
    input.value = ""; input.style.height = "auto"; updateCommands();
    state.replyTo = null; $("reply-preview").hidden = true;
    lastTypingSent = 0;
    hideError();
    const ref = `s${state.nextRef++}`;
    frame.ref = ref;
    state.refs.set(ref, { resolve: () => {}, reject: (error) => {
      state.pending.delete(frame.client_id);
      if (!input.value) input.value = body; // nothing typed is lost
      showError(error.message);
    } });
    send(frame); // if offline, it is resent on reconnect
  }

  function showError(message) { const node = $("composer-error"); node.textContent = message; node.hidden = false; }
  function hideError() { $("composer-error").hidden = true; }

  $("join-room").addEventListener("click", async () => {
    try {
      await api("POST", `/api/rooms/${state.current}/join`);
      const room = state.rooms.get(state.current);
      room.member = true;
      renderHeader(); renderSidebar();
    } catch (error) { showError(error.message); }
  });

  // --- Context panel ------------------------------------------------------------------
  $("toggle-context").addEventListener("click", () => { const ctx = $("context"); ctx.hidden = !ctx.hidden; if (!ctx.hidden) renderContext(); });
  $("close-context").addEventListener("click", () => { $("context").hidden = true; });

  async function renderContext() {
    const body = $("context-body");
    const room = state.rooms.get(state.current);
    if (!room) { body.replaceChildren(el("p", { class: "muted", text: "No room selected." })); return; }
    let info;
    try { info = await api("GET", `/api/rooms/${room.id}`); } catch (error) { body.replaceChildren(el("p", { class: "error", text: error.message })); return; }
    if (room.canModerate !== info.you.can_moderate) { room.canModerate = info.you.can_moderate; renderMessages({}); }
    const items = [
      el("h3", { text: room.name }),
      el("p", { class: "muted", text: room.kind === "public" ? "Public room" : room.kind === "private" ? "Private room" : "Direct message" }),
      el("p", { class: "topic", text: room.topic || "No topic yet." }),
    ];
    if (info.you.can_write && room.kind !== "direct") {
      items.push(el("button", { type: "button", class: "secondary small", text: "Set topic", onclick: async () => {
        const topic = await prompt_("Topic", room.topic || "");
        if (topic !== null) api("PATCH", `/api/rooms/${room.id}`, { topic }).catch((e) => showError(e.message));
      } }));
    }
    if (info.you.can_moderate && room.kind !== "direct") {
      items.push(" ", el("button", { type: "button", class: "secondary small", text: "Rename", onclick: async () => {
        const name = await prompt_("Room name", room.name);
        if (name) api("PATCH", `/api/rooms/${room.id}`, { name }).catch((e) => showError(e.message));
      } }));
      items.push(" ", el("button", { type: "button", class: "secondary small", text: room.archived ? "Unarchive" : "Archive", onclick: () =>
        api("PATCH", `/api/rooms/${room.id}`, { archived: !room.archived }).catch((e) => showError(e.message)) }));
    }
    items.push(el("h3", { text: `Members (${info.members.length})` }));
    items.push(el("ul", { class: "members" }, ...info.members.map((m) => {
      const person = state.people.get(m.id);
      const canChange = info.you.can_moderate && room.kind !== "direct" && m.role !== "owner" && m.id !== state.me.id;
      const next = m.role === "moderator" ? "member" : "moderator";
      return el("li", {}, el("span", { class: `dot ${person ? person.status : "offline"}` }), ` ${m.name}`,
        m.role !== "member" ? el("span", { class: "muted", text: ` · ${m.role}` }) : null,
        canChange ? el("button", { type: "button", class: "link small role-toggle", "data-user-id": m.id,
          text: next === "moderator" ? " make moderator" : " remove moderator",
          onclick: () => api("POST", `/api/rooms/${room.id}/members/${m.id}/role`, { role: next }).then(renderContext).catch((e) => showError(e.message)) }) : null);
    })));
    if (info.you.can_write && room.kind !== "direct") {
      items.push(el("h3", { text: "Invite" }));
      const out = el("p", { class: "invite-url" });
      items.push(el("button", { type: "button", class: "small", text: "Create invite link", onclick: async () => {
        try { const data = await api("POST", `/api/rooms/${room.id}/invites`, { expires_in_days: 7 }); out.replaceChildren(el("input", { value: data.invite.url, readonly: true, "aria-label": "Invite link", onfocus: (e) => e.target.select() })); }
        catch (error) { out.textContent = error.message; }
      } }), out);
      const email = el("input", { type: "email", placeholder: "name@example.com", "aria-label": "Invite by email" });
      items.push(el("form", { class: "inline invite-email", onsubmit: async (e) => {
        e.preventDefault();
        try {
          const data = await api("POST", `/api/rooms/${room.id}/invites`, { email: email.value });
          if (data.email_error) out.replaceChildren(el("span", { class: "error", text: data.email_error }), el("input", { value: data.invite.url, readonly: true, "aria-label": "Invite link" }));
          else { out.textContent = `Invitation sent to ${email.value}.`; email.value = ""; }
        }
        catch (error) { out.textContent = error.message; }
      } }, email, el("button", { type: "submit", class: "small", text: "Send" })));
    }
    if (info.you.member) {
      items.push(el("p", {}, el("button", { type: "button", class: "link danger", text: "Leave room", onclick: async () => {
        if (await confirm_(`Leave ${room.name}?`)) api("POST", `/api/rooms/${room.id}/leave`).catch((e) => showError(e.message));
      } })));
    }
    for (const hook of hooks.context) hook(items, room);
    body.replaceChildren(...items);
  }

  // --- Dialogs ------------------------------------------------------------------------
  function dialog(build) {
    const dlg = $("dialog");
    const form = $("dialog-form");
    return new Promise((resolve) => {
      form.replaceChildren(...build(resolve));
      dlg.onclose = () => resolve(null);
      dlg.showModal();
      const first = form.querySelector("input, textarea, select, button");
      if (first) first.focus();
    });
  }
  function close_(value, resolve) { const dlg = $("dialog"); dlg.onclose = null; dlg.close(); resolve(value); }

  function prompt_(label, value = "", multiline = false) {
    return dialog((resolve) => {
      const field = multiline ? el("textarea", { rows: 4 }) : el("input", {});
      field.value = value;
      field.setAttribute("aria-label", label);
      return [el("label", { text: label }), field, el("div", { class: "dialog-buttons" },
        el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => close_(null, resolve) }),
        el("button", { type: "submit", text: "Save", onclick: (e) => { e.preventDefault(); close_(field.value, resolve); } }))];
    });
  }
  function confirm_(text) {
    return dialog((resolve) => [el("p", { text }), el("div", { class: "dialog-buttons" },
      el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => close_(false, resolve) }),
      el("button", { type: "submit", text: "OK", onclick: (e) => { e.preventDefault(); close_(true, resolve); } }))]);
  }
  function choose(label, options) {
    return dialog((resolve) => [el("p", { text: label }), el("div", { class: "choices" },
      ...options.map((o) => el("button", { type: "button", class: "secondary", text: o, onclick: () => close_(o, resolve) }))),
      el("div", { class: "dialog-buttons" }, el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => close_(null, resolve) }))]);
  }

  $("new-room").addEventListener("click", async () => {
    const result = await dialog((resolve) => {
      const name = el("input", { required: true, maxlength: 80, "aria-label": "Room name", placeholder: "design-review" });
      const topic = el("input", { maxlength: 250, "aria-label": "Topic", placeholder: "What is it about? (optional)" });
      const priv = el("input", { type: "checkbox", id: "new-room-private" });
      return [el("h2", { text: "New room" }), el("label", { text: "Name" }), name, el("label", { text: "Topic" }), topic,
        el("p", {}, priv, el("label", { for: "new-room-private", class: "inline-label", text: " Private (invite only)" })),
        el("div", { class: "dialog-buttons" },
          el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => close_(null, resolve) }),
          el("button", { type: "submit", text: "Create", onclick: (e) => { e.preventDefault(); close_({ name: name.value, topic: topic.value, kind: priv.checked ? "private" : "public" }, resolve); } }))];
    });
    if (!result) return;
    try {
      const data = await api("POST", `/api/w/${state.workspace.slug}/rooms`, result);
      roomState(data.room);
      send({ type: "subscribe", rooms: [data.room.id] });
      openRoom(data.room.id);
    } catch (error) { showError(error.message); }
  });

  $("browse-rooms").addEventListener("click", async () => {
    const data = await api("GET", `/api/w/${state.workspace.slug}/rooms/browse`);
    const picked = await dialog((resolve) => [el("h2", { text: "Public rooms" }),
      data.rooms.length ? el("ul", { class: "browse" }, ...data.rooms.map((r) => el("li", {},
        el("button", { type: "button", class: "link", text: `# ${r.name}`, onclick: () => close_(r, resolve) }),
        el("span", { class: "muted", text: ` · ${r.members} members${r.topic ? " · " + r.topic : ""}` })))) : el("p", { class: "muted", text: "You are in every public room already." }),
      el("div", { class: "dialog-buttons" }, el("button", { type: "button", class: "secondary", text: "Close", onclick: () => close_(null, resolve) }))]);
    if (!picked) return;
    const room = roomState({ ...picked, member: false });
    send({ type: "subscribe", rooms: [room.id] });
    openRoom(room.id);
  });

  $("new-direct").addEventListener("click", async () => {
    const others = [...state.people.values()].filter((p) => p.id !== state.me.id);
    const chosen = await dialog((resolve) => {
      const boxes = others.map((p) => el("input", { type: "checkbox", value: p.id, id: `dm-${p.id}` }));
      return [el("h2", { text: "Direct message" }),
        others.length ? el("ul", { class: "browse" }, ...others.map((p, i) => el("li", {}, boxes[i], el("label", { for: `dm-${p.id}`, class: "inline-label", text: ` ${p.name}` })))) : el("p", { class: "muted", text: "Invite teammates to your workspace first." }),
        el("div", { class: "dialog-buttons" },
          el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => close_(null, resolve) }),
          el("button", { type: "submit", text: "Open", onclick: (e) => { e.preventDefault(); close_(boxes.filter((b) => b.checked).map((b) => Number(b.value)), resolve); } }))];
    });
    if (!chosen || !chosen.length) return;
    try {
      const data = await api("POST", `/api/w/${state.workspace.slug}/direct`, { user_ids: chosen });
      await refreshRooms();
      openRoom(data.room.id);
    } catch (error) { showError(error.message); }
  });

  $("open-sidebar").addEventListener("click", () => document.body.classList.toggle("show-sidebar"));

  // --- HTTP ---------------------------------------------------------------------------
  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  async function api(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || `Request failed (${response.status})`);
      error.detail = data.error || {}; // code and extra fields (a clarifying question's options)
      throw error;
    }
    return data;
  }

  // --- Hooks for other scripts (static/js/reminders.js): frames, drawn messages, the context panel.
  const hooks = { frame: [], message: [], context: [] };
  window.MathiaChat = { hooks, api, el, state, showError, rerender: () => renderMessages({ keepBottom: true }) };

  // --- Start --------------------------------------------------------------------------
  for (const summary of boot.rooms) roomState(summary);
  renderSidebar();
  connect();
  const fromHash = Number((location.hash.match(/^#room-(\d+)$/) || [])[1]);
  const first = state.rooms.has(fromHash) ? fromHash : (boot.rooms.find((r) => r.kind !== "direct") || boot.rooms[0] || {}).id;
  if (first) openRoom(first);
  else if (fromHash) { roomState({ id: fromHash, kind: "public", name: "Room", topic: "", archived: false, member: false, version: 0 }); openRoom(fromHash); }
  window.addEventListener("hashchange", () => {
    const id = Number((location.hash.match(/^#room-(\d+)$/) || [])[1]);
    if (id && id !== state.current && state.rooms.has(id)) openRoom(id);
  });
})();
