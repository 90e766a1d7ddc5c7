// The mqim web client: plain ES modules, no build step. This module wires the pieces together:
// the session (js/session.js), the MQTT connection (js/realtime.js), the thread list
// (js/threads.js) and the open thread (js/chat.js). See docs/web-client.md.

import { ChatView } from "./js/chat.js";
import { $, h, replaceChildren } from "./js/dom.js";
import { Names } from "./js/names.js";
import { Realtime } from "./js/realtime.js";
import { Session } from "./js/session.js";
import { ThreadList } from "./js/threads.js";

// A listener on "this machine" is reached by the host the page came from.
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "0.0.0.0", "[::]", "[::1]"]);

function wsUrl(raw) {
  if (!raw) return null;
  const url = new URL(raw);
  if (LOCAL_HOSTS.has(url.hostname)) url.hostname = location.hostname;
  return url.href;
}

const KICK_REASONS = {
  replaced: "you logged in on another web page",
  signed_out_remotely: "this device was signed out",
  password_changed: "your password changed",
  refresh_reuse: "your session was used elsewhere",
  banned: "your account was banned",
  deleted: "your account was deleted",
};

const REMOVED_REASONS = {
  left: "You left the conversation.",
  removed: "You were removed from the conversation.",
  dissolved: "The group was dissolved.",
  deleted: "The conversation was deleted.",
  declined: "You declined the conversation.",
};

class App {
  constructor() {
    this.session = new Session({ onSignedOut: (reason) => this.signOut(reason) });
    this.config = { mqtt_ws_url: null };
    this.realtime = null;
    this.chat = null;
    this.flashTimer = null;
  }

  async start() {
    try {
      this.config = (await (await fetch("config.json")).json()).data;
    } catch {
      // without it the client still works over HTTP, without live updates
    }
    this.#bindSignin();
    this.#bindChat();
    try {
      if (await this.session.resume()) await this.enter();
      else this.showSignin("");
    } catch (err) {
      this.showSignin(`Could not reach the server: ${err.message}`);
    }
  }

  // -- signing in and out -------------------------------------------------------------------

  showSignin(message) {
    $("#chat").hidden = true;
    $("#signin").hidden = false;
    $("#signin-error").textContent = message;
    document.title = "mqim";
  }

  #bindSignin() {
    const toggle = (register) => {
      $("#register-form").hidden = !register;
      $("#login-form").hidden = register;
      $("#signin-error").textContent = "";
    };
    $("#show-register").addEventListener("click", () => toggle(true));
    $("#show-login").addEventListener("click", () => toggle(false));
    const submit = (form, action) => form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = Object.fromEntries(new FormData(form));
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await action(fields);
        form.reset();
        await this.enter();
      } catch (err) {
        $("#signin-error").textContent = err.message;
      } finally {
        button.disabled = false;
      }
    });
    submit($("#login-form"), (f) => this.session.login(f.login, f.password));
    submit($("#register-form"), (f) => this.session.register(f));
  }

  async enter() {
    $("#signin").hidden = true;
    $("#chat").hidden = false;
    const user = this.session.user;
    replaceChildren($("#me"), user.name, h("small", {}, ` (${user.id})`));
    this.names = new Names(this.session);
    this.threads = new ThreadList({
      session: this.session, names: this.names, root: $("#threads"),
      onOpen: (id) => this.openThread(id),
    });
    const url = wsUrl(this.config?.mqtt_ws_url);
    if (url) {
      this.realtime = new Realtime({
        url, session: this.session,
        onEvent: (event) => this.#onEvent(event),
        onStatus: (state) => this.#status(state),
        onReconnected: () => this.#resync(),
        onSendUpdate: (pending) => this.#onSendUpdate(pending),
      });
    } else {
      this.#status("off");
      this.flash("Live updates are off: the server has no MQTT WebSocket listener.");
    }
    const items = await this.threads.reload();
    // Known before the first CONNECT, so that it subscribes to all of them at once.
    items.forEach((item) => this.realtime?.watch(item.thread_id));
    this.realtime?.start();
    const opened = new URLSearchParams(location.hash.slice(1)).get("thread");
    if (opened && this.threads.get(opened)) await this.openThread(opened);
  }

  async signOut(message) {
    this.realtime?.stop();
    this.realtime = null;
    this.chat?.close();
    this.chat = null;
    replaceChildren($("#thread"), h("p", { class: "empty" }, "Pick a thread, or start a new chat."));
    history.replaceState(null, "", location.pathname);
    await this.session.logout();
    this.showSignin(message);
  }

  // -- live events ----------------------------------------------------------------------------

  #onEvent(event) {
    switch (event.type) {
      case "message":
      case "message_reply":
      case "event":
        this.threads.onTimeline(event, this.#viewing(event.thread_id));
        if (this.chat?.threadId === event.thread_id) this.chat.onTimeline(event);
        break;
      case "message_reaction":
      case "message_unsend":
      case "message_edit":
      case "poll_update":  // acts on a message: the open chat shows it; the list is unchanged
        if (this.chat?.threadId === event.thread_id) this.chat.onTimeline(event);
        break;
      case "typ":
        if (this.chat?.threadId === event.thread_id) this.chat.onTyping(event);
        break;
      case "read_receipt":
        if (this.chat?.threadId === event.thread_id) this.chat.onReadReceipt(event);
        if (event.reader === this.session.userId) this.threads.markRead(event.thread_id, event.seq);
        break;
      case "read":  // this user read on another device
        this.threads.markRead(event.thread_id, event.seq);
        break;
      case "thread_added":
        this.realtime?.watch(event.thread_id);
        this.threads.reload().catch((err) => this.flash(err.message));
        break;
      case "thread_removed":
        this.dropThread(event.thread_id,
          REMOVED_REASONS[event.reason] ?? "You are no longer in that conversation.");
        break;
      case "thread_settings":
        this.threads.applySettings(event.thread_id, event.settings);
        if (this.chat?.threadId === event.thread_id) this.chat.renderHead();
        break;
      case "kicked":
        if (event.session_id === this.session.bundle?.session_id) {
          this.signOut(`Signed out: ${KICK_REASONS[event.reason] ?? event.reason}.`);
        }
        break;
      case "error":
        this.flash(event.msg);
        break;
      default:
        break;
    }
  }

  #viewing(threadId) {
    return this.chat?.threadId === threadId && document.visibilityState === "visible";
  }

  // After a reconnect: what happened meanwhile comes over HTTP.
  async #resync() {
    try {
      const items = await this.threads.reload();
      items.forEach((item) => this.realtime?.watch(item.thread_id));
      await this.chat?.catchUp();
    } catch (err) {
      this.flash(err.message);
    }
  }

  #status(state) {
    const el = $("#conn");
    el.dataset.state = state;
    el.textContent = { online: "live", connecting: "connecting…", offline: "offline",
      off: "no live updates" }[state] ?? state;
  }

  // -- actions the views ask for ---------------------------------------------------------------

  async openThread(threadId) {
    this.chat?.close();
    this.chat = new ChatView(this, threadId, $("#thread"));
    this.threads.setOpen(threadId);
    history.replaceState(null, "", `#thread=${encodeURIComponent(threadId)}`);
    await this.guard(() => this.chat.open());
  }

  dropThread(threadId, message) {
    this.realtime?.unwatch(threadId);
    this.threads.remove(threadId);
    if (this.chat?.threadId === threadId) {
      this.chat.close();
      this.chat = null;
      this.threads.setOpen(null);
      history.replaceState(null, "", location.pathname);
      replaceChildren($("#thread"), h("p", { class: "empty" }, message));
    }
  }

  send(threadId, body) {
    if (this.realtime) {
      this.chat?.onSendUpdate(this.realtime.send(threadId, body));
      return;
    }
    // No broker to talk to: the same send over HTTP, answered with the stored message.
    this.guard(async () => {
      const result = await this.session.api("POST", `/api/threads/${threadId}/messages`, { body });
      const [entry] = await this.session.api("GET",
        `/api/threads/${threadId}/messages?after_seq=${result.seq - 1}&limit=1`);
      this.#onEvent(entry);
    });
  }

  #onSendUpdate(pending) {
    if (pending.state === "sent" && pending.entry) {
      this.threads.onTimeline(pending.entry, true);
    }
    this.chat?.onSendUpdate(pending);
  }

  pendingFor(threadId) {
    return [...(this.realtime?.pending.values() ?? [])].filter((p) => p.threadId === threadId);
  }

  retry(clientMsgId) { this.realtime?.retry(clientMsgId); }

  markRead(threadId, seq) {
    if (this.realtime) this.realtime.read(threadId, seq);
    else this.session.api("POST", `/api/threads/${threadId}/read`, { seq }).catch(() => {});
    this.threads.markRead(threadId, seq);
  }

  rename(chat) {
    const dialog = $("#rename-dialog");
    dialog.target = chat;
    $("#rename-form").elements.name.value = chat.info?.name ?? "";
    $("#rename-error").textContent = "";
    dialog.showModal();
  }

  async guard(action) {
    try {
      await action();
    } catch (err) {
      this.flash(err.message);
    }
  }

  flash(text) {
    const el = $("#flash");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  #bindChat() {
    $("#logout").addEventListener("click", () => this.signOut(""));
    $("#new-chat").addEventListener("click", () => {
      $("#new-chat-error").textContent = "";
      $("#new-chat-dialog").showModal();
    });
    $("#new-chat-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#createThread(event.target, event.submitter?.value);
    });
    $("#rename-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const dialog = $("#rename-dialog");
      if (event.submitter?.value === "cancel") { dialog.close(); return; }
      const chat = dialog.target;
      const name = event.target.elements.name.value.trim();
      try {
        await this.session.api("PATCH", `/api/threads/${chat.threadId}`, { name });
        dialog.close();
      } catch (err) {
        $("#rename-error").textContent = err.message;
      }
    });
  }

  async #createThread(form, kind) {
    const dialog = $("#new-chat-dialog");
    if (kind === "cancel") { dialog.close(); return; }
    const ids = form.elements.user_ids.value.split(/[\s,]+/).filter(Boolean);
    const name = form.elements.name.value.trim();
    const error = $("#new-chat-error");
    if (kind === "direct" && ids.length !== 1) {
      error.textContent = "A direct chat is with exactly one user id.";
      return;
    }
    const body = { type: kind === "direct" ? "direct" : "group", user_ids: ids };
    if (name && kind !== "direct") body.name = name;
    try {
      const thread = await this.session.api("POST", "/api/threads", body);
      dialog.close();
      form.reset();
      this.realtime?.watch(thread.thread_id);
      await this.threads.reload();
      await this.openThread(thread.thread_id);
    } catch (err) {
      error.textContent = err.message;
    }
  }
}

new App().start();
