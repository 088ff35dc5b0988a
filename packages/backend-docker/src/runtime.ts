/** What every container of the backend shares: its PID 1. */

/** The loop of PID 1: reap orphaned processes, exit on SIGTERM. */
export const REAP = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait; done";

/** PID 1 of our containers (the sandbox's runs hidden-shell.ts's install first). */
export const REAPER = ['/bin/sh', '-c', REAP];
