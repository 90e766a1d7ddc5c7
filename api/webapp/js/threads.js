// The thread list (GET /api/threads): unread counts, last message, and what the live events
// change in it.

import { h, replaceChildren } from "./dom.js";

const PAGE = 100;
const MAX_PAGES = 20;

export function isMuted(item) {
  return Boolean(item.muted_until) && new Date(item.muted_until) > new Date();
}

export function preview(entry) {
  if (!entry) return "";
  if (entry.type === "event") return entry.logMessageBody ?? "";
  return entry.body || `[${entry.msg_type}]`;
}

export class ThreadList {
  constructor({ session, names, root, onOpen }) {
    this.session = session;
    this.names = names;
    this.root = root;
    this.onOpen = onOpen;      // (threadId) when the user picks a thread
    this.items = new Map();    // thread_id -> list item
    this.peers = new Map();    // direct thread_id -> Promise<other user id>
    this.openId = null;
  }

  async reload() {
    const items = [];
    let after = null;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const query = new URLSearchParams({ limit: String(PAGE) });
      if (after) query.set("after", after);
      const batch = await this.session.api("GET", `/api/threads?${query}`);
      items.push(...batch);
      if (batch.length < PAGE) break;
      after = batch[batch.length - 1].thread_id;
    }
    this.items = new Map(items.map((item) => [item.thread_id, item]));
    this.render();
    return items;
  }

  get(threadId) { return this.items.get(threadId); }

  remove(threadId) {
    this.items.delete(threadId);
    this.render();
  }

  // A timeline entry arrived live; `viewing` when the user has that thread open on screen.
  onTimeline(entry, viewing) {
    const item = this.items.get(entry.thread_id);
    if (!item || entry.seq <= (item.last_message?.seq ?? 0)) return;
    item.last_message = entry;
    item.max_seq = Math.max(item.max_seq, entry.seq);
    item.last_activity_at = new Date(entry.created_at).toISOString();
    const fromOther = entry.type !== "event" && entry.sender_id !== this.session.userId;
    if (fromOther && !viewing) item.unread += 1;
    if (entry.type === "event" && entry.logMessageType === "log:thread-name") {
      item.name = entry.logMessageData?.name ?? item.name;
    }
    this.render();
  }

  markRead(threadId, seq) {
    const item = this.items.get(threadId);
    if (!item) return;
    item.read_seq = Math.max(item.read_seq, seq);
    if (item.read_seq >= item.max_seq) item.unread = 0;
    item.marked_unread = false;
    this.render();
  }

  applySettings(threadId, settings) {
    const item = this.items.get(threadId);
    if (!item) return;
    Object.assign(item, settings);
    this.render();
  }

  setOpen(threadId) {
    this.openId = threadId;
    this.render();
  }

  // The other member of a direct thread (its name is the thread's title).
  peerOf(threadId) {
    if (!this.peers.has(threadId)) {
      this.peers.set(threadId, this.session.api("GET", `/api/threads/${threadId}`)
        .then((info) => info.participants.map((p) => p.user_id)
          .find((id) => id !== this.session.userId) ?? this.session.userId)
        .catch(() => null));
    }
    return this.peers.get(threadId);
  }

  // The thread's title as an element: its name, else the peer's name for a direct thread.
  title(item) {
    if (item.name) return h("span", { class: "title" }, item.name);
    if (item.type !== "direct") return h("span", { class: "title" }, "Unnamed group");
    const el = h("span", { class: "title" }, "…");
    this.peerOf(item.thread_id).then((peer) => {
      if (peer) el.replaceWith(this.names.span(peer, "title"));
    });
    return el;
  }

  render() {
    const sorted = [...this.items.values()].sort((a, b) =>
      (b.pinned - a.pinned) || b.last_activity_at.localeCompare(a.last_activity_at));
    replaceChildren(this.root, sorted.map((item) => this.#row(item)));
    if (sorted.length === 0) this.root.append(h("li", { class: "empty" }, "No threads yet."));
    const unread = sorted.filter((i) => !isMuted(i)).reduce((n, i) => n + i.unread, 0);
    document.title = unread > 0 ? `(${unread}) mqim` : "mqim";
  }

  #row(item) {
    const unread = item.unread > 0 || item.marked_unread;
    const button = h("button", {
      type: "button", class: "thread-row", "data-thread-id": item.thread_id,
      "aria-current": item.thread_id === this.openId ? "true" : null,
      onclick: () => this.onOpen(item.thread_id),
    },
    h("span", { class: "row-top" },
      this.title(item),
      isMuted(item) ? h("span", { class: "muted-icon", title: "notifications muted" }, "🔕") : null,
      unread ? h("span", { class: "badge", "aria-label": "unread" },
        item.unread > 0 ? String(item.unread) : "•") : null),
    h("span", { class: "preview" }, preview(item.last_message)));
    return h("li", { class: unread ? "unread" : "" }, button);
  }
}
