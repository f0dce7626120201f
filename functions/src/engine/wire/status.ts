import { status as Status } from '@grpc/grpc-js';

export { Status };

/** The gRPC status code of an error from the v1 client, if it carries one. */
export function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** An error for a gRPC status, shaped like the client's own (wrappers and tests raise these). */
export function grpcError(code: Status, message: string): Error & { code: Status } {
  return Object.assign(new Error(`${code} ${Status[code]}: ${message}`), { code });
}
