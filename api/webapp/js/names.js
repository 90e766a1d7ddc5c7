// Display names of users, fetched once each (GET /api/users/{id}) and shown as the id until
// the name arrives.

import { h } from "./dom.js";

export class Names {
  constructor(session) {
    this.session = session;
    this.cache = new Map();  // user id -> Promise<name>
  }

  get(userId) {
    if (userId === this.session.userId) return Promise.resolve(this.session.user.name);
    if (!this.cache.has(userId)) {
      this.cache.set(userId, this.session.api("GET", `/api/users/${encodeURIComponent(userId)}`)
        .then((profile) => profile.name)
        .catch(() => userId));
    }
    return this.cache.get(userId);
  }

  // A span holding the user's name (the id until it is known).
  span(userId, className = "name") {
    const el = h("span", { class: className, title: userId ?? "" }, userId ?? "someone");
    if (userId) this.get(userId).then((name) => { el.textContent = name; });
    return el;
  }
}
