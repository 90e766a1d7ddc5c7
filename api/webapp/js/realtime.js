// The MQTT half (docs/mqtt.md): MQTT.js over WebSocket with the login's `mqtt` credentials,
// subscribed to im/u/{me} and to im/t/{thread} of each thread; commands go to im/up/{me}.
//
// Sends carry a client_msg_id and a req. One is confirmed by its ack or by its own echo on the
// thread topic, whichever comes first; until then it is sent again, with the same
// client_msg_id (the server answers a repeat with the first result), every RETRY_MS while
// connected.

import { randomHex } from "./dom.js";

const RETRY_MS = 4000;
const MAX_TRIES = 8;

export class Realtime {
  constructor({ url, session, onEvent, onStatus, onReconnected, onSendUpdate }) {
    this.url = url;
    this.session = session;
    this.onEvent = onEvent;            // (event, topicKind "t" | "u")
    this.onStatus = onStatus;          // ("connecting" | "online" | "offline")
    this.onReconnected = onReconnected; // () after a reconnect: time to catch up over HTTP
    this.onSendUpdate = onSendUpdate;  // (pending) when a send's state changes
    this.threads = new Set();
    this.pending = new Map();          // client_msg_id -> pending send
    this.reqCounter = 0;
    this.client = null;
    this.everConnected = false;
    const prefix = session.mqtt.topic_prefix;
    this.prefix = prefix;
    this.userTopic = `${prefix}/u/${session.userId}`;
    this.upTopic = `${prefix}/up/${session.userId}`;
  }

  start() {
    const creds = this.session.mqtt;
    this.onStatus("connecting");
    this.client = window.mqtt.connect(this.url, {
      username: creds.username,
      password: creds.password,
      clientId: creds.client_id,
      protocolVersion: 4,   // the embedded broker speaks MQTT 3.1.1
      clean: true,          // missed events are fetched over HTTP after a reconnect
      resubscribe: false,   // we subscribe on every connect, to the threads we have now
      reconnectPeriod: 2000,
      connectTimeout: 10000,
      keepalive: 30,
    });
    this.client.on("connect", () => this.#connected());
    // The access token is checked at CONNECT only: reconnect with the newest one.
    this.client.on("reconnect", () => {
      this.client.options.password = this.session.mqtt.password;
      this.onStatus("connecting");
    });
    this.client.on("close", () => this.onStatus("offline"));
    this.client.on("message", (topic, payload) => this.#message(topic, payload));
  }

  stop() {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.client?.end(true);
    this.client = null;
  }

  get connected() { return Boolean(this.client?.connected); }

  watch(threadId) {
    if (this.threads.has(threadId)) return;
    this.threads.add(threadId);
    if (this.connected) this.client.subscribe(this.#threadTopic(threadId), { qos: 1 });
  }

  unwatch(threadId) {
    if (!this.threads.delete(threadId)) return;
    if (this.connected) this.client.unsubscribe(this.#threadTopic(threadId));
  }

  command(body) {
    this.client?.publish(this.upTopic, JSON.stringify(body), { qos: 1 });
  }

  typing(threadId, isTyping) {
    if (this.connected) this.command({ op: "typing", thread_id: threadId, is_typing: isTyping });
  }

  read(threadId, seq) {
    this.command({ op: "read", thread_id: threadId, seq });
  }

  send(threadId, body) {
    const pending = {
      clientMsgId: `w-${randomHex(12)}`, threadId, body, req: null, tries: 0,
      state: "sending", error: null, timer: null, createdAt: Date.now(),
    };
    this.pending.set(pending.clientMsgId, pending);
    this.#publishSend(pending);
    return pending;
  }

  retry(clientMsgId) {
    const pending = this.pending.get(clientMsgId);
    if (!pending) return;
    pending.tries = 0;
    pending.state = "sending";
    pending.error = null;
    this.onSendUpdate(pending);
    this.#publishSend(pending);
  }

  #publishSend(pending) {
    clearTimeout(pending.timer);
    if (this.connected) {
      pending.tries += 1;
      pending.req = `s${++this.reqCounter}`;
      this.command({
        op: "send", req: pending.req, thread_id: pending.threadId,
        client_msg_id: pending.clientMsgId, type: "text", body: pending.body,
      });
    }
    // While offline this only waits: the publish goes out from #connected.
    pending.timer = setTimeout(() => {
      if (!this.pending.has(pending.clientMsgId)) return;
      if (pending.tries >= MAX_TRIES) {
        pending.state = "failed";
        pending.error = "no answer from the server";
      } else if (pending.tries > 0) {
        pending.state = "retrying";
      }
      this.onSendUpdate(pending);
      if (pending.state !== "failed") this.#publishSend(pending);
    }, RETRY_MS);
  }

  // With the stored entry: the echo itself, or one built from the ack.
  #confirm(clientMsgId, entry) {
    const pending = this.pending.get(clientMsgId);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(clientMsgId);
    pending.state = "sent";
    pending.entry = entry;
    this.onSendUpdate(pending);
  }

  // The ack carries the seq and id, not the entry: build it from what was sent, so a device
  // that hears no echo (notifications off) still shows the message in its place.
  #confirmByAck(data) {
    const pending = this.pending.get(data.client_msg_id);
    if (!pending) return;
    this.#confirm(data.client_msg_id, {
      type: "message", thread_id: data.thread_id, seq: data.seq, message_id: data.message_id,
      created_at: Date.now(), sender_id: this.session.userId, client_msg_id: data.client_msg_id,
      msg_type: "text", body: pending.body, reply_to: null, mentions: [], attachments: [],
    });
  }

  #failByReq(event) {
    for (const pending of this.pending.values()) {
      if (pending.req !== event.req) continue;
      clearTimeout(pending.timer);
      if (event.error === "rate_limited") {
        // Not a refusal: the same send goes again once the limit allows.
        pending.state = "retrying";
        pending.timer = setTimeout(() => this.#publishSend(pending), (event.retry_after ?? 1) * 1000);
      } else {
        pending.state = "failed";
        pending.error = event.msg;
      }
      this.onSendUpdate(pending);
      return true;
    }
    return false;
  }

  #threadTopic(threadId) { return `${this.prefix}/t/${threadId}`; }

  #connected() {
    const topics = [this.userTopic, ...Array.from(this.threads, (t) => this.#threadTopic(t))];
    this.client.subscribe(topics, { qos: 1 });
    this.onStatus("online");
    // Sends that waited for a connection go now, with their client_msg_id.
    for (const p of this.pending.values()) if (p.state !== "failed") this.#publishSend(p);
    if (this.everConnected) this.onReconnected();
    this.everConnected = true;
  }

  #message(topic, payload) {
    let event;
    try {
      event = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      return;
    }
    if (!event || typeof event !== "object") return;
    const kind = topic === this.userTopic ? "u" : "t";
    if (kind === "u" && event.type === "ack" && event.data?.client_msg_id) {
      this.#confirmByAck(event.data);
    } else if (kind === "u" && event.type === "error" && event.req && this.#failByReq(event)) {
      return;
    }
    if (kind === "t" && (event.type === "message" || event.type === "message_reply")
        && event.sender_id === this.session.userId) {
      this.#confirm(event.client_msg_id, event);
    }
    this.onEvent(event, kind);
  }
}
