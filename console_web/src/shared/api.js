// JSON over HTTP with the staff (or citizen) bearer token.  Errors are the server's
// own: {error: {code, message, field}} becomes an ApiError with those fields.  A 401
// calls `onUnauthorized` (the page shows its login again, keeping what was typed).
export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "http_error";
    this.field = error.field ?? null;
  }
}

export function createApi({ getToken, onUnauthorized = () => {} }) {
  async function request(method, path, { json, body, headers = {}, raw = false } = {}) {
    const token = getToken();
    const init = { method, headers: { ...headers } };
    if (token) init.headers.Authorization = `Bearer ${token}`;
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (cause) {
      const err = new ApiError(0, { error: { code: "network", message: cause.message } });
      throw err;
    }
    if (response.status === 401 && token) onUnauthorized();
    if (raw) {
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      return response;
    }
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, parsed);
    return parsed;
  }
  return {
    get: (path, options) => request("GET", path, options),
    post: (path, json, options = {}) => request("POST", path, { ...options, json }),
    del: (path, options) => request("DELETE", path, options),
    request,
  };
}
