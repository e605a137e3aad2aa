// Reminders in the chat page: the bell (what fired, what is coming), toasts in every open tab,
// Snooze on Mathia's reminder messages, and "Your reminders" in the context panel.
// Everything shown comes from /api/reminders and the reminder.* frames; text goes in as text.
"use strict";

(() => {
  const chat = window.MathiaChat;
  if (!chat) return;
  const { el, api } = chat;
  const $ = (id) => document.getElementById(id);

  const state = { upcoming: new Map(), unseen: new Map(), email: false, loaded: false };

  async function load() {
    try {
      const data = await api("GET", "/api/reminders");
      state.upcoming = new Map(data.upcoming.map((r) => [r.id, r]));
      state.unseen = new Map(data.unseen.map((d) => [d.id, d]));
      state.email = data.preferences.email;
      state.loaded = true;
      renderBell();
      chat.rerender(); // confirmations drawn before the list arrived get their Cancel
      // Reminders that fired while this person was away show now (newest last, at most three).
      for (const delivery of data.unseen.slice(0, 3).reverse()) dueToast(delivery);
    } catch (error) {
      // Say so: an empty bell would read as "no reminders". The next frame or a reload tries again.
      chat.showError(`Your reminders could not be loaded: ${error.message}`);
    }
  }

  // --- The bell ----------------------------------------------------------------------------
  function renderBell() {
    const count = $("reminder-count");
    count.textContent = String(state.unseen.size);
    count.hidden = state.unseen.size === 0;
    $("reminder-bell").setAttribute("aria-label", state.unseen.size ? `Reminders (${state.unseen.size} new)` : "Reminders");
    if (!$("reminder-panel").hidden) renderPanel();
  }

  // The panel: lists (redrawn on every change) above a form and the email choice (built once,
  // so a change never wipes what is being typed or the answer just shown).
  let lists = null;
  function renderPanel() {
    const panel = $("reminder-panel");
    if (!lists) {
      lists = el("div", { class: "reminder-lists" });
      const field = el("input", { type: "text", placeholder: "call John in 10 minutes", "aria-label": "Remind me to", maxlength: 700, id: "reminder-request" });
      const out = el("p", { class: "reminder-answer", role: "status" });
      const form = el("form", { class: "reminder-form", onsubmit: (e) => { e.preventDefault(); create({ request: field.value }, out, field); } },
        el("label", { for: "reminder-request", text: "Remind me to…" }), field, el("button", { type: "submit", class: "small", text: "Set" }));
      const email = el("input", { type: "checkbox", id: "reminder-email" });
      email.checked = state.email;
      email.addEventListener("change", async () => {
        try { state.email = (await api("PUT", "/api/reminders/preferences", { email: email.checked })).preferences.email; }
        catch (error) { email.checked = state.email; chat.showError(error.message); }
      });
      panel.replaceChildren(el("h2", { text: "Reminders" }), lists, form, out,
        el("p", {}, email, el("label", { for: "reminder-email", class: "inline-label", text: " Also email me my reminders" })));
    }
    const items = [];
    if (state.unseen.size) {
      items.push(el("h3", { text: "Went off" }));
      items.push(el("ul", { class: "reminder-list" }, ...[...state.unseen.values()].map((d) => el("li", { class: "fired" },
        el("span", { class: "reminder-text", text: d.text }), el("span", { class: "muted", text: ` · ${d.occurrence_local}` }),
        snoozeButtons(d.reminder_id)))));
      items.push(el("button", { type: "button", class: "link small", text: "Mark all as seen", onclick: () => markSeen(null) }));
    }
    items.push(el("h3", { text: "Coming up" }));
    items.push(upcomingList());
    lists.replaceChildren(...items);
  }

  function upcomingList() {
    if (!state.upcoming.size) return el("p", { class: "muted", text: "Nothing coming up." });
    const sorted = [...state.upcoming.values()].sort((a, b) => a.due_at.localeCompare(b.due_at));
    return el("ul", { class: "reminder-list" }, ...sorted.map((r) => el("li", { "data-reminder-id": r.id },
      el("span", { class: "reminder-text", text: r.text }),
      el("span", { class: "muted", text: ` · ${r.due_local}${r.recurrence ? ` · ${r.recurrence}` : ""}` }), " ",
      el("button", { type: "button", class: "link small", text: "Edit", onclick: () => edit(r) }),
      el("button", { type: "button", class: "link small danger", text: "Cancel", onclick: () => cancel(r.id) }))));
  }

  function snoozeButtons(reminderId) {
    const choices = [["10m", "10 min"], ["1h", "1 hour"], ["tomorrow", "Tomorrow"]];
    return el("span", { class: "snooze" }, " Snooze: ", ...choices.map(([value, label]) =>
      el("button", { type: "button", class: "link small", "data-snooze": value, text: label, onclick: () => snooze(reminderId, value) })));
  }

  $("reminder-bell").addEventListener("click", () => {
    const panel = $("reminder-panel");
    panel.hidden = !panel.hidden;
    if (!panel.hidden) renderPanel();
  });

  // --- Actions -------------------------------------------------------------------------------
  async function create(body, out, field) {
    out.replaceChildren();
    try {
      const data = await api("POST", "/api/reminders", { workspace: chat.state.workspace.slug, room_id: chat.state.current || null, ...body });
      out.textContent = data.confirmation;
      if (field) field.value = "";
    } catch (error) {
      const detail = error.detail || {};
      out.replaceChildren(el("span", { text: error.message }));
      for (const option of detail.options || []) { // a clarifying question: pick an exact time
        out.append(" ", el("button", { type: "button", class: "small secondary", text: option.label,
          onclick: () => create({ text: detail.text || body.request, due_at: option.due_at }, out, field) }));
      }
    }
  }

  async function cancel(id) {
    try { await api("POST", `/api/reminders/${id}/cancel`); } catch (error) { chat.showError(error.message); }
  }

  async function snooze(id, choice) {
    try {
      const data = await api("POST", `/api/reminders/${id}/snooze`, { for: choice });
      toast([el("span", { text: `Snoozed until ${data.reminder.due_local}.` })], 5000);
    } catch (error) { chat.showError(error.message); }
  }

  async function edit(reminder) {
    const text = window.prompt("Remind me to…", reminder.text);
    if (text === null) return;
    const when = window.prompt("When? (leave as is to keep the time)", "");
    const body = {};
    if (text.trim() && text.trim() !== reminder.text) body.text = text.trim();
    if (when && when.trim()) body.when = when.trim();
    if (!Object.keys(body).length) return;
    try { await api("PATCH", `/api/reminders/${reminder.id}`, body); } catch (error) { chat.showError(error.message); }
  }

  async function markSeen(ids) {
    try { await api("POST", "/api/reminders/seen", { ids }); } catch (error) { chat.showError(error.message); }
  }

  // --- Toasts --------------------------------------------------------------------------------
  function toast(children, timeout) {
    const node = el("div", { class: "toast", role: "status" }, ...children,
      el("button", { type: "button", class: "link small toast-close", "aria-label": "Dismiss", text: "✕", onclick: () => node.remove() }));
    $("toasts").append(node);
    if (timeout) setTimeout(() => node.remove(), timeout);
    return node;
  }

  function dueToast(delivery) {
    if (document.querySelector(`.toast[data-delivery-id="${delivery.id}"]`)) return;
    const node = toast([el("strong", { text: "⏰ Reminder" }), el("span", { class: "toast-text", text: ` ${delivery.text}` }),
      el("span", { class: "muted", text: ` · ${delivery.occurrence_local}` }), snoozeButtons(delivery.reminder_id)]);
    node.dataset.deliveryId = delivery.id;
    node.classList.add("due");
    node.querySelector(".toast-close").addEventListener("click", () => markSeen([delivery.id]));
  }

  function dropSetToast(id) {
    for (const node of document.querySelectorAll(`.toast.set[data-reminder-id="${id}"]`)) node.remove();
  }

  function setToast(reminder) {
    const node = toast([el("span", { text: `Reminder set: ${reminder.text} · ${reminder.due_local}` }), " ",
      el("button", { type: "button", class: "small secondary", text: "Cancel", onclick: (e) => { e.target.closest(".toast").remove(); cancel(reminder.id); } })], 15000);
    node.classList.add("set");
    node.dataset.reminderId = reminder.id;
  }

  // --- Frames ----------------------------------------------------------------------------------
  chat.hooks.frame.push((frame) => {
    if (frame.type === "reminder.due") {
      state.unseen.set(frame.delivery.id, frame.delivery);
      dropSetToast(frame.reminder.id); // its Cancel would come too late
      if (frame.reminder.status === "scheduled") state.upcoming.set(frame.reminder.id, frame.reminder);
      else state.upcoming.delete(frame.reminder.id);
      dueToast(frame.delivery);
      renderBell();
    } else if (frame.type === "reminder.changed") {
      const known = state.upcoming.has(frame.reminder.id);
      if (frame.reminder.status === "scheduled") state.upcoming.set(frame.reminder.id, frame.reminder);
      else state.upcoming.delete(frame.reminder.id);
      if (!known && frame.reminder.status === "scheduled") setToast(frame.reminder);
      if (frame.reminder.status !== "scheduled") dropSetToast(frame.reminder.id);
      renderBell();
      refreshContext();
      chat.rerender();
    } else if (frame.type === "reminder.seen") {
      if (frame.delivery_ids === null) state.unseen.clear();
      else for (const id of frame.delivery_ids) state.unseen.delete(id);
      for (const node of document.querySelectorAll(".toast.due")) {
        if (frame.delivery_ids === null || frame.delivery_ids.includes(Number(node.dataset.deliveryId))) node.remove();
      }
      renderBell();
    } else if (frame.type === "hello" && state.loaded) {
      load(); // a reconnect: what fired while the socket was down
    }
  });

  // Mathia's confirmation of a reminder you set ("… (reminder 12; `/remind cancel 12` to cancel)")
  // gets a Cancel button for you while the reminder is still to come.
  const CONFIRMATION = /\(reminder (\d+); `\/remind cancel \1` to cancel\)/;
  chat.hooks.message.push((node, message) => {
    if (!message.author || !message.author.assistant || message.deleted) return;
    if (!message.reply_to || message.reply_to.author_id !== chat.state.me.id) return;
    const match = CONFIRMATION.exec(message.body);
    if (!match) return;
    const id = Number(match[1]);
    const reminder = state.upcoming.get(id);
    const card = el("div", { class: "reminder-card" });
    if (reminder) card.append(el("button", { type: "button", class: "small secondary", "data-cancel-reminder": id, text: "Cancel", onclick: () => cancel(id) }));
    else if (state.loaded) card.append(el("span", { class: "muted", text: "No longer coming up." }));
    node.querySelector(".body").append(card);
  });

  // Mathia's reminder messages get Snooze; messages only you can see say so.
  chat.hooks.message.push((node, message) => {
    if (message.visible_to) node.classList.add("only-you");
    if (message.visible_to) node.querySelector(".meta").append(el("span", { class: "muted only-you-note", text: " · only you can see this" }));
    if (message.card && message.card.kind === "reminder" && !message.deleted) {
      node.querySelector(".body").append(el("div", { class: "reminder-card" }, snoozeButtons(message.card.reminder_id)));
    }
  });

  let contextItems = null;
  function refreshContext() { if (contextItems && !$("context").hidden) contextItems.replaceWith(contextItems = contextSection()); }
  function contextSection() {
    return el("section", { class: "reminders-context" }, el("h3", { text: `Your reminders (${state.upcoming.size})` }), upcomingList());
  }
  chat.hooks.context.push((items) => { contextItems = contextSection(); items.push(contextItems); });

  load();
})();
