/** A logger with pino's interface that keeps what it is given, for assertions. */
import type { Logger } from '../../src/observe/logger.js';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

export class MemoryLogger implements Logger {
  readonly entries: LogEntry[] = [];

  debug(fields: object, message = ''): void {
    this.entries.push({ level: 'debug', fields: fields as Record<string, unknown>, message });
  }

  info(fields: object, message = ''): void {
    this.entries.push({ level: 'info', fields: fields as Record<string, unknown>, message });
  }

  warn(fields: object, message = ''): void {
    this.entries.push({ level: 'warn', fields: fields as Record<string, unknown>, message });
  }

  error(fields: object, message = ''): void {
    this.entries.push({ level: 'error', fields: fields as Record<string, unknown>, message });
  }

  /** Messages logged at `level`. */
  messages(level?: LogEntry['level']): string[] {
    return this.entries.filter((entry) => level === undefined || entry.level === level).map((entry) => entry.message);
  }
}
