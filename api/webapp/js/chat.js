// One open thread: its history with infinite scroll back, live entries, sends shown as pending
// until confirmed, typing, read receipts ("Seen by"), reactions, edits and unsends, and the
// governance buttons.

import { h, replaceChildren, timeOf } from "./dom.js";
import { isMuted } from "./threads.js";

const PAGE = 50;
const TYPING_RESEND_MS = 3000;   // while typing, say so again this often
const TYPING_IDLE_MS = 4000;     // then "stopped typing" after this long without a key
const TYPING_SHOW_MS = 6000;     // how long another's "typing" shows without a renewal
const MUTE_FOREVER = "9999-12-31T00:00:00Z";
const QUICK_REACTION = "👍";
// Timeline entries that act on a message: they take a seq but show on the message they name.
const ACTIONS = new Set(["message_reaction", "message_unsend", "message_edit", "poll_update"]);

export class ChatView {
  constructor(app, threadId, root) {
    this.app = app;
    this.threadId = threadId;
    this.root = root;
    this.entries = new Map();      // seq -> element
    this.messages = new Map();     // message_id -> { entry, el } of the messages shown
    this.pendingEls = new Map();   // client_msg_id -> element
    this.readSeqs = new Map();     // member id -> read_seq
    this.myReadSeq = 0;
    this.myLastSeq = 0;
    this.typers = new Map();       // member id -> timer
    this.loading = false;
    this.exhausted = false;
    this.typingSentAt = 0;
    this.typingIdle = null;
    this.info = null;
    this.onVisible = () => this.maybeRead();
    document.addEventListener("visibilitychange", this.onVisible);
    this.#build();
  }

  get me() { return this.app.session.userId; }

  #build() {
    this.titleEl = h("h2", { class: "thread-title" });
    this.membersEl = h("p", { class: "members" });
    this.muteBtn = h("button", { type: "button", onclick: () => this.#toggleMute() }, "Mute");
    this.leaveBtn = h("button", { type: "button", onclick: () => this.#leave() }, "Leave");
    const renameBtn = h("button", { type: "button", onclick: () => this.app.rename(this) }, "Rename");
    this.edgeEl = h("p", { class: "edge" });
    this.timeline = h("div", { class: "timeline" });
    this.pendingBox = h("div", { class: "pending-box" });
    this.scroller = h("div", { class: "messages", role: "log", "aria-live": "polite",
      onscroll: () => { if (this.scroller.scrollTop < 80) this.loadOlder(); } },
    this.edgeEl, this.timeline, this.pendingBox);
    this.typingEl = h("p", { class: "typing", "aria-live": "polite" });
    this.input = h("textarea", { name: "body", rows: 1, placeholder: "Message", maxlength: 8000,
      "aria-label": "Message", oninput: () => this.#typed(), onkeydown: (e) => {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); this.#submit(); }
      } });
    const composer = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.#submit(); } },
      this.input, h("button", { type: "submit" }, "Send"));
    replaceChildren(this.root,
      h("header", { class: "thread-head" },
        h("div", {}, this.titleEl, this.membersEl),
        h("div", { class: "actions" }, renameBtn, this.muteBtn, this.leaveBtn)),
      this.scroller, this.typingEl, composer);
  }

  async open() {
    await this.reloadInfo();
    const page = await this.#page({ limit: PAGE });
    page.forEach((entry) => this.#insert(entry));
    this.exhausted = page.length < PAGE;
    for (const pending of this.app.pendingFor(this.threadId)) this.onSendUpdate(pending);
    this.#edge();
    this.#toBottom();
    // A short history does not fill the pane, so no scroll would ever ask for more.
    while (!this.exhausted && this.scroller.scrollHeight <= this.scroller.clientHeight) {
      await this.loadOlder();
    }
    this.#seenBy();
    this.maybeRead();
    this.input.focus();
  }

  close() {
    document.removeEventListener("visibilitychange", this.onVisible);
    this.#stopTyping();
    this.typers.forEach((timer) => clearTimeout(timer));
  }

  async reloadInfo() {
    this.info = await this.app.session.api("GET", `/api/threads/${this.threadId}`);
    for (const p of this.info.participants) {
      this.readSeqs.set(p.user_id, Math.max(p.read_seq, this.readSeqs.get(p.user_id) ?? 0));
    }
    this.myReadSeq = Math.max(this.myReadSeq, this.readSeqs.get(this.me) ?? 0);
    this.renderHead();
  }

  renderHead() {
    const item = this.app.threads.get(this.threadId);
    replaceChildren(this.titleEl, item ? this.app.threads.title(item)
      : (this.info?.name ?? "Thread"));
    const others = (this.info?.participants ?? []).map((p) => p.user_id);
    replaceChildren(this.membersEl, this.info?.type === "direct" ? "Direct chat"
      : others.flatMap((id, i) => [i ? ", " : "", this.app.names.span(id)]));
    this.muteBtn.textContent = item && isMuted(item) ? "Unmute" : "Mute";
    this.leaveBtn.hidden = this.info?.type === "direct";
  }

  // -- the timeline ---------------------------------------------------------------------

  #page(params) {
    const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
    return this.app.session.api("GET", `/api/threads/${this.threadId}/messages?${query}`);
  }

  get firstSeq() { return Math.min(...this.entries.keys()); }
  get lastSeq() { return this.entries.size ? Math.max(...this.entries.keys()) : 0; }

  async loadOlder() {
    if (this.loading || this.exhausted || this.entries.size === 0) return;
    this.loading = true;
    this.edgeEl.textContent = "Loading earlier messages…";
    try {
      const page = await this.#page({ before_seq: this.firstSeq, limit: PAGE });
      const fromBottom = this.scroller.scrollHeight - this.scroller.scrollTop;
      page.forEach((entry) => this.#insert(entry));
      this.exhausted = page.length < PAGE;
      // Keep what the reader was looking at in place while earlier entries go in above it.
      this.scroller.scrollTop = this.scroller.scrollHeight - fromBottom;
    } finally {
      this.loading = false;
      this.#edge();
    }
  }

  // After a reconnect, or when a live seq skips ahead: fetch what was missed, in order.
  async catchUp() {
    for (;;) {
      const page = await this.#page({ after_seq: this.lastSeq, limit: 200 });
      page.forEach((entry) => this.#insert(entry));
      if (page.length < 200) break;
    }
    this.#seenBy();
    this.maybeRead();
  }

  #edge() {
    this.edgeEl.textContent = this.exhausted ? "This is the beginning of the conversation." : "";
  }

  onTimeline(entry) {
    const atBottom = this.scroller.scrollHeight - this.scroller.scrollTop - this.scroller.clientHeight < 60;
    const gap = this.entries.size > 0 && entry.seq > this.lastSeq + 1;
    if (!this.#insert(entry)) return;
    if (gap) this.catchUp().catch(() => {});
    if (entry.sender_id) this.#typingStopped(entry.sender_id);
    if (entry.type === "event") this.reloadInfo().catch(() => {});
    if (atBottom || entry.sender_id === this.me) this.#toBottom();
    this.#seenBy();
    this.maybeRead();
  }

  #insert(entry) {
    if (this.entries.has(entry.seq)) return false;
    if (ACTIONS.has(entry.type)) this.#apply(entry);
    const el = this.#entryEl(entry);
    // Live entries go at the end; pages of earlier ones in their place.
    const after = entry.seq > this.lastSeq ? null
      : [...this.timeline.children].find((c) => Number(c.dataset.seq) > entry.seq);
    this.entries.set(entry.seq, el);
    this.timeline.insertBefore(el, after ?? null);
    if (entry.client_msg_id && this.pendingEls.has(entry.client_msg_id)) {
      this.pendingEls.get(entry.client_msg_id).remove();
      this.pendingEls.delete(entry.client_msg_id);
    }
    if ((entry.type === "message" || entry.type === "message_reply") && entry.sender_id === this.me) {
      this.myLastSeq = Math.max(this.myLastSeq, entry.seq);
      this.myReadSeq = Math.max(this.myReadSeq, entry.seq);  // a send moves one's own read mark
    }
    return true;
  }

  #entryEl(entry) {
    // An action's own element only holds its seq's place; its effect shows on the message.
    if (ACTIONS.has(entry.type)) return h("div", { class: "action", hidden: true, "data-seq": entry.seq });
    if (entry.type === "event") {
      // The server's text names people by id: show the author by name.
      const text = entry.logMessageBody ?? entry.logMessageType;
      const byAuthor = entry.author && text.startsWith(`${entry.author} `);
      return h("div", { class: "event", "data-seq": entry.seq },
        byAuthor ? [this.app.names.span(entry.author), text.slice(entry.author.length)] : text);
    }
    const mine = entry.sender_id === this.me;
    const el = h("div", { class: `msg ${mine ? "mine" : "theirs"}`, "data-seq": entry.seq,
      "data-message-id": entry.message_id });
    const shown = { entry: { ...entry, reactions: { ...(entry.reactions ?? {}) } }, el };
    this.messages.set(entry.message_id, shown);
    this.#renderMessage(shown);
    return el;
  }

  #renderMessage({ entry, el }) {
    const mine = entry.sender_id === this.me;
    const meta = h("div", { class: "meta" },
      mine ? null : this.app.names.span(entry.sender_id, "sender"),
      h("time", { datetime: new Date(entry.created_at).toISOString() }, timeOf(entry.created_at)),
      entry.edited_at && !entry.deleted ? h("span", { class: "edited" }, "edited") : null);
    if (entry.deleted) {
      el.classList.add("deleted");
      replaceChildren(el, meta, h("div", { class: "body" }, "Message unsent"));
      return;
    }
    const reactions = Object.entries(entry.reactions ?? {}).filter(([, users]) => users.length)
      .map(([emoji, users]) => h("button", { type: "button", class: "reaction",
        "aria-pressed": String(users.includes(this.me)), title: users.join(", "),
        onclick: () => this.#react(entry, emoji) }, `${emoji} ${users.length}`));
    const tools = h("div", { class: "tools" },
      h("button", { type: "button", class: "link react", "aria-label": "React",
        onclick: () => this.#react(entry, QUICK_REACTION) }, QUICK_REACTION),
      mine ? h("button", { type: "button", class: "link unsend",
        onclick: () => this.#unsend(entry) }, "Unsend") : null);
    replaceChildren(el, meta, h("div", { class: "body" }, entry.body || `[${entry.msg_type}]`),
      reactions.length ? h("div", { class: "reactions" }, reactions) : null, tools);
    if (entry.seq === this.myLastSeq) this.#seenBy();
  }

  // A reaction, edit, unsend or poll update changes a message already on screen (one that is
  // not, further back, comes from the server in its current state when it is loaded).
  #apply(action) {
    const shown = this.messages.get(action.message_id);
    if (!shown) return;
    const entry = shown.entry;
    if (action.type === "message_reaction") {
      const users = new Set(entry.reactions[action.reaction] ?? []);
      if (action.action === "add") users.add(action.user_id); else users.delete(action.user_id);
      entry.reactions[action.reaction] = [...users];
    } else if (action.type === "message_edit") {
      Object.assign(entry, { body: action.body, content: action.content, edited_at: action.edited_at });
    } else if (action.type === "message_unsend") {
      Object.assign(entry, { deleted: true, body: null, content: null, reactions: {} });
    } else if (action.type === "poll_update" && entry.content) {
      entry.content = { ...entry.content, closed: action.closed,
        options: entry.content.options.map((o) => ({ ...o,
          votes: action.options.find((n) => n.option_id === o.option_id)?.votes ?? o.votes })) };
    }
    this.#renderMessage(shown);
  }

  async #react(entry, emoji) {
    const mine = (entry.reactions[emoji] ?? []).includes(this.me);
    const path = `/api/threads/${this.threadId}/messages/${entry.message_id}/reactions`;
    await this.app.guard(() => (mine
      ? this.app.session.api("DELETE", `${path}/${encodeURIComponent(emoji)}`)
      : this.app.session.api("POST", path, { emoji })));
  }

  async #unsend(entry) {
    if (!window.confirm("Unsend this message for everyone?")) return;
    await this.app.guard(() => this.app.session.api("DELETE",
      `/api/threads/${this.threadId}/messages/${entry.message_id}`));
  }

  #toBottom() { this.scroller.scrollTop = this.scroller.scrollHeight; }

  // -- sending ----------------------------------------------------------------------------

  #submit() {
    const body = this.input.value.trim();
    if (!body) return;
    this.input.value = "";
    this.#stopTyping();
    this.app.send(this.threadId, body);
    this.#toBottom();
  }

  onSendUpdate(pending) {
    if (pending.threadId !== this.threadId) return;
    if (pending.state === "sent") {
      if (pending.entry) this.onTimeline(pending.entry);
      return;
    }
    let el = this.pendingEls.get(pending.clientMsgId);
    if (!el) {
      el = h("div", { class: "msg mine pending", "data-client-msg-id": pending.clientMsgId },
        h("div", { class: "body" }, pending.body), h("div", { class: "status" }));
      this.pendingEls.set(pending.clientMsgId, el);
      this.pendingBox.append(el);
    }
    const status = el.querySelector(".status");
    el.classList.toggle("failed", pending.state === "failed");
    if (pending.state === "failed") {
      replaceChildren(status, `Not sent: ${pending.error} `, h("button", { type: "button",
        class: "link", onclick: () => this.app.retry(pending.clientMsgId) }, "Retry"));
    } else {
      status.textContent = pending.state === "retrying" ? "Sending again…" : "Sending…";
    }
  }

  // -- typing -----------------------------------------------------------------------------

  #typed() {
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_RESEND_MS) {
      this.typingSentAt = now;
      this.app.realtime?.typing(this.threadId, true);
    }
    clearTimeout(this.typingIdle);
    this.typingIdle = setTimeout(() => this.#stopTyping(), TYPING_IDLE_MS);
  }

  #stopTyping() {
    clearTimeout(this.typingIdle);
    if (this.typingSentAt) this.app.realtime?.typing(this.threadId, false);
    this.typingSentAt = 0;
  }

  onTyping(event) {
    if (event.from === this.me) return;
    if (!event.is_typing) { this.#typingStopped(event.from); return; }
    clearTimeout(this.typers.get(event.from));
    this.typers.set(event.from, setTimeout(() => this.#typingStopped(event.from), TYPING_SHOW_MS));
    this.#renderTyping();
  }

  #typingStopped(userId) {
    if (!this.typers.has(userId)) return;
    clearTimeout(this.typers.get(userId));
    this.typers.delete(userId);
    this.#renderTyping();
  }

  #renderTyping() {
    const ids = [...this.typers.keys()];
    if (ids.length === 0) { this.typingEl.replaceChildren(); return; }
    const names = ids.flatMap((id, i) => [i ? " and " : "", this.app.names.span(id)]);
    replaceChildren(this.typingEl, ...names, ids.length > 1 ? " are typing…" : " is typing…");
  }

  // -- reading ----------------------------------------------------------------------------

  // Tell the server how far this user has read, when the thread is on screen.
  maybeRead() {
    if (document.visibilityState !== "visible") return;
    const last = this.lastSeq;
    if (last <= this.myReadSeq) return;
    this.myReadSeq = last;
    this.app.markRead(this.threadId, last);
  }

  onReadReceipt(event) {
    this.readSeqs.set(event.reader, Math.max(event.seq, this.readSeqs.get(event.reader) ?? 0));
    if (event.reader === this.me) this.myReadSeq = Math.max(this.myReadSeq, event.seq);
    this.#seenBy();
  }

  // "Seen by …" under this user's latest message: the others whose read_seq reached it.
  #seenBy() {
    this.timeline.querySelector(".seen")?.remove();
    const el = this.entries.get(this.myLastSeq);
    if (!el) return;
    const readers = [...this.readSeqs].filter(([id, seq]) => id !== this.me && seq >= this.myLastSeq)
      .map(([id]) => id);
    if (readers.length === 0) return;
    el.append(h("div", { class: "seen" }, "Seen by ",
      readers.flatMap((id, i) => [i ? ", " : "", this.app.names.span(id)])));
  }

  // -- governance ---------------------------------------------------------------------------

  async #toggleMute() {
    const item = this.app.threads.get(this.threadId);
    const mute = !(item && isMuted(item));
    await this.app.guard(async () => {
      const settings = await this.app.session.api("PATCH", `/api/threads/${this.threadId}/settings`,
        { muted_until: mute ? MUTE_FOREVER : null });
      this.app.threads.applySettings(this.threadId, settings);
      this.renderHead();
    });
  }

  async #leave() {
    if (!window.confirm("Leave this conversation?")) return;
    await this.app.guard(async () => {
      await this.app.session.api("DELETE",
        `/api/threads/${this.threadId}/members/${encodeURIComponent(this.me)}`);
      this.app.dropThread(this.threadId, "You left the conversation.");
    });
  }
}
