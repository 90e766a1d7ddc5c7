// The signed-in session: register, log in, resume after a reload, refresh the access token
// before it expires, and call the HTTP API with it (docs/http-api.md).
//
// The refresh token is kept in sessionStorage: it survives a reload of this tab and is gone when
// the tab closes. Each refresh token works once, so two tabs must never share one.

const STORAGE_KEY = "mqim.refresh_token";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.msg ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 0;
    this.error = body?.error ?? "http_error";
  }
}

async function call(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  let parsed = null;
  try {
    parsed = await response.json();
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  if (!response.ok || parsed?.code !== 0) throw new ApiError(response.status, parsed);
  return parsed.data;
}

export class Session {
  constructor({ onToken, onSignedOut }) {
    this.bundle = null;
    this.onToken = onToken;          // (bundle) after every login or refresh
    this.onSignedOut = onSignedOut;  // (reason) when the server ended the session
    this.timer = null;
    this.refreshing = null;
  }

  get user() { return this.bundle.user; }
  get userId() { return this.bundle.user.id; }
  get mqtt() { return this.bundle.mqtt; }

  async login(login, password) {
    this.#take(await call("POST", "/api/auth/login", { body: { login, password, platform: "web" } }));
  }

  async register({ user_id, name, password }) {
    const body = { name, password, platform: "web" };
    if (user_id) body.user_id = user_id;
    this.#take(await call("POST", "/api/auth/register", { body }));
  }

  // After a reload: swap the stored refresh token for a fresh bundle. False when there is none
  // or it no longer works.
  async resume() {
    if (!sessionStorage.getItem(STORAGE_KEY)) return false;
    try {
      await this.refresh();
      return true;
    } catch {
      this.forget();
      return false;
    }
  }

  // One refresh at a time: concurrent callers share it (a refresh token works only once).
  refresh() {
    this.refreshing ??= (async () => {
      try {
        const refresh_token = sessionStorage.getItem(STORAGE_KEY);
        this.#take(await call("POST", "/api/auth/refresh", { body: { refresh_token } }));
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async logout() {
    const token = this.bundle?.token;
    this.forget();
    if (token) await call("POST", "/api/auth/logout", { token }).catch(() => {});
  }

  forget() {
    clearTimeout(this.timer);
    sessionStorage.removeItem(STORAGE_KEY);
    this.bundle = null;
  }

  // An authenticated call. An expired access token (a laptop that slept through the refresh
  // timer) is refreshed once and the call repeated.
  async api(method, path, body) {
    try {
      return await call(method, path, { body, token: this.bundle.token });
    } catch (err) {
      if (!(err instanceof ApiError) || err.error !== "token_expired") throw err;
      await this.#refreshOrSignOut();
      return call(method, path, { body, token: this.bundle.token });
    }
  }

  #take(bundle) {
    this.bundle = bundle;
    sessionStorage.setItem(STORAGE_KEY, bundle.refresh_token);
    clearTimeout(this.timer);
    // Refresh at 80% of the access token's life: MQTT reconnects need a live token too.
    const seconds = Math.max(5, bundle.expires_in * 0.8);
    this.timer = setTimeout(() => this.#refreshOrSignOut().catch(() => {}), seconds * 1000);
    this.onToken?.(bundle);
  }

  async #refreshOrSignOut() {
    try {
      await this.refresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.forget();
        this.onSignedOut?.("your session has ended; log in again");
      }
      throw err;
    }
  }
}
