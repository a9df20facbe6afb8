/**
 * An ordinary request at the far end: to a plain-HTTP origin through west's own client
 * (h1/exchange.ts), to an https origin through undici. Either way the body streams from the
 * tunnel with back-pressure, and the origin's answer streams back, the origin socket paused
 * while the tunnel's window is used up.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { stripHopByHop, withoutHeader } from '../shared/passes.js';
import { classifyOriginError, type Attempt } from './attempt.js';
import { performH1 } from './h1/exchange.js';

/** Raw header names and values as undici hands them over (bytes, read as latin1 like Node). */
function rawStrings(raw: Buffer[] | string[] | null): string[] {
  const out: string[] = [];
  for (const h of raw ?? []) out.push(typeof h === 'string' ? h : h.toString('latin1'));
  return out;
}

/** Performs an ordinary (not upgrade) request. Never throws; failures reset the stream. */
export function performPlain(a: Attempt): void {
  if (a.url.protocol === 'http:') performH1(a);
  else performUndici(a);
}

function performUndici(a: Attempt): void {
  const { stream, url } = a;
  // undici frames the body itself (chunked when no Content-Length is given), and the
  // listener has already answered any Expect: 100-continue.
  const headers = a.framing ? withoutHeader(a.headers, 'transfer-encoding', 'expect') : a.headers;
  const hasBody = a.hasBody;
  // The body's iterator must not destroy the stream when the body ends: the response still
  // flows the other way.
  // (undici documents AsyncIterable bodies; its types list only Readable.)
  const body = hasBody ? stream.iterator({ destroyOnReturn: false }) as unknown as Readable : null;
  if (!hasBody) stream.resume();

  let abort: ((err?: Error) => void) | undefined;
  let resume: (() => void) | undefined;
  let answered = false;
  stream.on('drain', () => resume?.());
  stream.once('close', () => {
    if (!(answered && stream.writableFinished)) abort?.(new Error('request cancelled'));
  });

  const handler: Dispatcher.DispatchHandlers = {
    onConnect: (abortRequest) => {
      if (stream.destroyed) abortRequest(new Error('request cancelled'));
      abort = abortRequest;
    },
    onHeaders: (statusCode, rawHeaders, resumeOrigin, statusText) => {
      // 1xx heads (103 Early Hints) go ahead of the answer when the near end takes them.
      if (statusCode < 200) {
        stream.inform({ status: statusCode, statusMessage: statusText, headers: stripHopByHop(rawStrings(rawHeaders), false) });
        return true;
      }
      answered = true;
      resume = resumeOrigin;
      a.answered(statusCode);
      stream.respond({ status: statusCode, statusMessage: statusText, headers: stripHopByHop(rawStrings(rawHeaders), false) });
      return true;
    },
    onData: (chunk) => stream.destroyed || stream.write(chunk),
    onComplete: (trailers) => {
      if (stream.destroyed) return;
      // A chunked answer's trailers travel just before END (feature `trailers`).
      stream.setTrailers(rawStrings(trailers));
      stream.end();
    },
    onError: (err: NodeJS.ErrnoException) => {
      if (stream.destroyed) return;
      const why = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
      const code = classifyOriginError(err);
      if (code === 'connect_timeout') a.fail(code, `connection to origin ${url.host} timed out after ${a.ctx.origins.connectTimeoutS} s`);
      else if (code === 'bad_request') a.fail(code, `cannot send this request to the origin: ${why}`);
      else a.fail(code, answered ? `origin ${url.origin} broke off mid-response (${why})` : `origin ${url.origin} failed (${why})`);
    },
  };
  a.ctx.origins.dispatcher.dispatch({
    origin: url.origin, path: a.target, method: a.method as Dispatcher.HttpMethod, headers, body,
  }, handler);
}
