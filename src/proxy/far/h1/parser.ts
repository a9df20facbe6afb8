/**
 * Node's own HTTP/1 response parser (llhttp, compiled into Node): the binding Node's
 * `http.request` drives (lib/_http_client.js), used here the same way: one parser per origin
 * connection, `execute()` per chunk read, `finish()` at the end of the connection, and
 * callbacks per message. Its JS surface is not typed by @types/node: this file is the one
 * place that knows it.
 */
import { createRequire } from 'node:module';

/** One response head as the parser hands it over. */
export type HeadersComplete = (
  versionMajor: number, versionMinor: number, headers: string[] | undefined, method: undefined, url: undefined,
  statusCode: number, statusMessage: string, upgrade: boolean, shouldKeepAlive: boolean,
) => number;

/** A parse error: `code` HPE_*, `reason` llhttp's words. */
export interface ParseError extends Error {
  code: string;
  reason?: string;
  bytesParsed?: number;
}

export interface NodeHttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  /** Bytes parsed, or the parse error. */
  execute(data: Buffer): number | ParseError;
  /** The end of the connection: completes a close-delimited body, or says what was cut short. */
  finish(): undefined | ParseError;
  close(): void;
  [key: number]: unknown;
}

interface ParserModule {
  HTTPParser: {
    new(): NodeHttpParser;
    RESPONSE: number;
    kOnMessageBegin: number;
    kOnHeaders: number;
    kOnHeadersComplete: number;
    kOnBody: number;
    kOnMessageComplete: number;
    kLenientNone: number;
  };
}

const { HTTPParser } = createRequire(import.meta.url)('node:_http_common') as ParserModule;

/** What a connection does with what the parser finds. */
export interface ParserEvents {
  messageBegin: () => void;
  /** Header lines the parser flushed before the head was complete (a long head), or trailers. */
  headers: (headers: string[]) => void;
  headersComplete: HeadersComplete;
  body: (chunk: Buffer) => void;
  messageComplete: () => void;
}

/** What a headers-complete callback returns: the answer has a body (llhttp reads it), or has none whatever its head says. */
export const READ_BODY = 0;
export const NO_BODY = 1;

/**
 * A strict response parser (no lenient flags: two Content-Lengths, Content-Length with
 * chunked, a bad chunk size are errors) with Node's default header size limit.
 */
export function responseParser(on: ParserEvents): NodeHttpParser {
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
  parser[HTTPParser.kOnMessageBegin] = on.messageBegin;
  parser[HTTPParser.kOnHeaders] = on.headers;
  parser[HTTPParser.kOnHeadersComplete] = on.headersComplete;
  parser[HTTPParser.kOnBody] = on.body;
  parser[HTTPParser.kOnMessageComplete] = on.messageComplete;
  return parser;
}

