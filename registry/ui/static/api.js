// The API client: the session's token, fetch() against /api/v1, the caller's permissions.

const TOKEN_KEY = "registry.console.token";
const API_BASE = new URL("../api/v1/", document.baseURI);

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An error answer of the API: HTTP status plus the body's {"error": {"code", "message", "hint"?}};
 * hint is {kind, name, value} (what to use instead) or null. */
export class ApiError extends Error {
  constructor(status, code, message, hint = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint && typeof hint.kind === "string" && typeof hint.name === "string" ? hint : null;
  }
}

/** One path segment, escaped (refs hold "@" and "~", keys anything). */
export const seg = (text) => encodeURIComponent(text);

/** Call the API; resolves to the JSON body, rejects with ApiError. */
export async function api(path, { method = "GET", params = {}, body } = {}) {
  const url = new URL(path.replace(/^\//, ""), API_BASE);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { Authorization: `Bearer ${token.get() || ""}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "network", `the registry did not answer (${err.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "http_error", error.message || response.statusText,
      error.hint || null);
  }
  return data;
}

/** Call a list endpoint; resolves to its items (the body is {data: [...], count: N}). */
export async function apiList(path, options = {}) {
  const body = await api(path, options);
  return body.data;
}

let me = null;

/** Who the token is ({name, role, datasets, actions}); asked once per session. */
export async function whoami() {
  if (me === null) me = await api("/whoami");
  return me;
}

export function forget() {
  me = null;
  token.clear();
}

/** Whether the token may perform ``action`` (write controls are shown only then). */
export const may = (action) => me !== null && me.actions.includes(action);

/** Re-run the current page (after a write control changed something). */
export const refresh = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
