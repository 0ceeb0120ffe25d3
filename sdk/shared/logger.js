// The step logger (`ctx.log`): `info`, `warn`, `error`, `debug`, formatted like console.log
// (util.format) and handed to a sink one line at a time with its level.
// It does not know about IPC or step indices; the caller's sink does.

import { format } from 'node:util';

/** @typedef {'info' | 'warn' | 'error' | 'debug'} LogLevel */

/**
 * @param {(level: LogLevel, line: string) => void} sink called once per line of every message
 */
export function createLogger(sink) {
  const at =
    (level) =>
    (message, ...args) => {
      for (const line of format(message, ...args).split('\n')) sink(level, line);
    };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}
