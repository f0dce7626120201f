/**
 * The page's only way to the control data: the API's viewer routes (and the admin routes for the
 * actions), with the signed-in user's Firebase ID token. The API lives beside the page:
 * `…/api/dashboard/` → `…/api/migration/`.
 */
export class ApiCallError extends Error {
  override readonly name = 'ApiCallError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type TokenSource = () => Promise<string>;

export class ApiClient {
  private readonly base: URL;

  constructor(
    private readonly token: TokenSource,
    pageUrl: string = location.href,
  ) {
    this.base = new URL('../migration/', pageUrl);
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(new URL(path, this.base), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      throw new ApiCallError(response.status, 'not-json', `${method} ${path}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
    }
    if (!response.ok) {
      const error = json as { error?: string; message?: string; issues?: Array<{ path: unknown[]; message: string }> } | null;
      const issues = error?.issues?.length ? ` (${error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`).join('; ')})` : '';
      throw new ApiCallError(response.status, error?.error ?? 'http', `${method} ${path}: ${error?.message ?? `HTTP ${response.status}`}${issues}`);
    }
    return json as T;
  }
}
